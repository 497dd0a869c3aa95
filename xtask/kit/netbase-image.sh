#!/usr/bin/env bash
# Step netbase-image: the image kube-proxy and kube-router run on (debootstrap minbase + iptables,
# ipset, iproute2, conntrack, ...), with an iptables wrapper that picks the nft or legacy backend
# the way kind's node entrypoint does, so the pods and the node program the same tables.
source "$KIT_SRC/lib.sh"
R=$WORK_DIR/rootfs
debootstrap_rootfs "$R" iptables,ipset,iproute2,conntrack,netcat-openbsd,procps,kmod,ca-certificates
install -m 0755 "$KIT_SRC/iptables-wrapper" "$R/usr/sbin/iptables-wrapper"
for t in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
  ln -sf iptables-wrapper "$R/usr/sbin/$t"
done
info debian_packages "$(deb_versions "$R" iptables ipset iproute2)"
trim_rootfs "$R"
rm -rf "$R"/usr/share/locale/*
import_rootfs "$R" "$NETBASE_IMAGE" \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'CMD ["/bin/bash"]'
rm -rf "$R"
