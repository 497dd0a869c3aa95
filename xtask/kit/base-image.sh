#!/usr/bin/env bash
# Step base-image: kind's base image (images/base of the kind module) without any registry:
# debootstrap the Dockerfile's package list plus Debian's containerd and runc, then do the
# Dockerfile's steps by hand with the files of the module zip (which loses exec bits: modes as in
# the Dockerfile), crictl and the CNI plugins built by earlier steps.
source "$KIT_SRC/lib.sh"
F=$(mod_dir "sigs.k8s.io/kind@$KIND_VERSION")/images/base/files
R=$WORK_DIR/rootfs
debootstrap_rootfs "$R" systemd,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,fuse-overlayfs,nfs-common,open-iscsi,bash,ca-certificates,curl,jq,procps,containerd,runc
log "configure the rootfs as kind's Dockerfile does"
install -d -m 0755 "$R/usr/local/bin" "$R/kind/bin" "$R/etc/containerd" "$R/etc/default" "$R/etc/sysctl.d" \
  "$R/etc/systemd/system/kubelet.service.d" "$R/LICENSES" "$R/opt/cni/bin" "$R/etc/kubernetes/manifests"
install -m 0755 "$F"/usr/local/bin/* "$R/usr/local/bin/"
install -m 0644 "$F"/kind/README.txt "$R/kind/"
install -m 0755 "$F"/kind/bin/* "$R/kind/bin/"
install -m 0644 "$F"/LICENSES/* "$R/LICENSES/"
install -m 0644 "$F"/etc/crictl.yaml "$R/etc/"
install -m 0644 "$F"/etc/containerd/* "$R/etc/containerd/"
C=$R/etc/containerd/config.toml
# RESTRICT_OOM_SCORE_ADJ (decided by xtask from /proc/self/status): where the host's capability
# bounding set lacks CAP_SYS_RESOURCE, nothing in a node may lower oom_score_adj, and every pod
# sandbox dies ("runc create failed: ... can't get final child's PID from pipe: EOF") on the -998
# kubelet gives static pods. containerd then has to clamp scores instead (what kind does rootless).
if [ "$RESTRICT_OOM_SCORE_ADJ" = true ]; then
  sed -i 's/^  restrict_oom_score_adj = false/  restrict_oom_score_adj = true/' "$C"
fi
# Non-root pods may bind ports below 1024 and ping, as on kind's own node images (containerd 2
# defaults): the probe image runs as 65534 and serves port 80.
grep -q enable_unprivileged_ports "$C" ||
  sed -i 's/^  restrict_oom_score_adj = \(.*\)$/  restrict_oom_score_adj = \1\n  enable_unprivileged_ports = true\n  enable_unprivileged_icmp = true/' "$C"
grep -nE 'restrict_oom_score_adj|enable_unprivileged' "$C"
install -m 0644 "$F"/etc/default/* "$R/etc/default/"
install -m 0644 "$F"/etc/sysctl.d/* "$R/etc/sysctl.d/"
install -m 0644 "$F"/etc/systemd/system/*.service "$F"/etc/systemd/system/*.slice "$R/etc/systemd/system/"
install -m 0644 "$F"/etc/systemd/system/kubelet.service.d/* "$R/etc/systemd/system/kubelet.service.d/"
find "$R/lib/systemd/system/sysinit.target.wants/" -name "systemd-tmpfiles-setup.service" -delete
rm -f "$R"/lib/systemd/system/multi-user.target.wants/* "$R"/etc/systemd/system/*.wants/* \
  "$R"/lib/systemd/system/local-fs.target.wants/* "$R"/lib/systemd/system/sockets.target.wants/*udev* \
  "$R"/lib/systemd/system/sockets.target.wants/*initctl* "$R"/lib/systemd/system/basic.target.wants/*
grep -q '^ReadKMsg=no' "$R/etc/systemd/journald.conf" || echo "ReadKMsg=no" >>"$R/etc/systemd/journald.conf"
ln -sf /lib/systemd/systemd "$R/sbin/init"
chroot "$R" systemctl enable kubelet.service containerd.service undo-mount-hacks.service
chroot "$R" systemctl mask systemd-binfmt.service
# Debian's containerd; kind's unit runs /usr/local/bin/containerd. kind's config is version 2, which
# containerd 1.6 reads unchanged.
ln -sf /usr/bin/containerd "$R/usr/local/bin/containerd"
ln -sf /usr/bin/ctr "$R/usr/local/bin/ctr"
ln -sf /usr/bin/containerd-shim-runc-v2 "$R/usr/local/bin/containerd-shim-runc-v2"
chroot "$R" ctr oci spec |
  jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' |
  jq 'del(.process.rlimits)' >"$R/etc/containerd/cri-base.json"
install -m 0755 "$CRICTL_BIN" "$R/usr/local/bin/crictl"
for p in host-local loopback portmap ptp bridge; do install -m 0755 "$CNI_BIN_DIR/$p" "$R/opt/cni/bin/$p"; done
info debian_packages "$(deb_versions "$R" containerd runc systemd iptables)"
info restrict_oom_score_adj "$RESTRICT_OOM_SCORE_ADJ"
trim_rootfs "$R"
import_rootfs "$R" "$BASE_IMAGE-rootfs" \
  --change 'ENV container=docker' --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]'
# docker import/commit refuse STOPSIGNAL as a change: add it with a metadata-only legacy build
# (FROM a local image never pulls).
printf 'FROM %s\nSTOPSIGNAL SIGRTMIN+3\n' "$BASE_IMAGE-rootfs" | docker build -q -t "$BASE_IMAGE" - >/dev/null
docker rmi "$BASE_IMAGE-rootfs" >/dev/null
docker image inspect "$BASE_IMAGE" --format 'entrypoint={{.Config.Entrypoint}} stopsignal={{.Config.StopSignal}}'
rm -rf "$R"
