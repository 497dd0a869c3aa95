# netreach-probe:<tag>: netreach's probe image (pods of cluster tests, and the "external endpoint"
# run by plain `docker run`). Built by `cargo xtask kit` with the legacy builder: BASE is the local
# probe-base image (Debian minbase + curl, nc, dig), never pulled.
ARG BASE
FROM ${BASE}
COPY netreach /usr/local/bin/netreach
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/netreach", "serve"]
