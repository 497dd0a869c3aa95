#!/usr/bin/env bash
# Step probe-base: the probe image's OS layer: Debian minbase + the probing tools (curl, nc, dig).
source "$KIT_SRC/lib.sh"
R=$WORK_DIR/rootfs
debootstrap_rootfs "$R" "$PROBE_PACKAGES"
info debian_packages "$(deb_versions "$R" curl netcat-openbsd bind9-dnsutils ca-certificates coreutils)"
trim_rootfs "$R"
rm -rf "$R"/usr/share/locale/*
import_rootfs "$R" "$PROBE_BASE_IMAGE" --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change 'CMD ["/bin/sh"]'
rm -rf "$R"
