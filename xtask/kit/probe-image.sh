#!/usr/bin/env bash
# Step probe-image: netreach-probe:<tag> = probe-base + the release `netreach` binary.
# PROBE_BIN (the binary), PROBE_IMAGE (name:tag) and PROBE_LABELS come from xtask.
source "$KIT_SRC/lib.sh"
CTX=$WORK_DIR/ctx
rm -rf "$CTX"
mkdir -p "$CTX"
install -m 0755 "$PROBE_BIN" "$CTX/netreach"
cp "$KIT_SRC/probe.Dockerfile" "$CTX/Dockerfile"
labels=()
for l in $PROBE_LABELS; do labels+=(--label "$l"); done
docker build -q --build-arg "BASE=$PROBE_BASE_IMAGE" "${labels[@]}" -t "$PROBE_IMAGE" "$CTX" >/dev/null
rm -rf "$CTX"
log "built $PROBE_IMAGE; checking that it runs"
docker run --rm --entrypoint sh "$PROBE_IMAGE" -c 'id -u; command -v curl nc dig; /usr/local/bin/netreach serve --help >/dev/null && echo serve-ok'
