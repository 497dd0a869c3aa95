# Shared helpers for the kit's step scripts. Sourced, never run.
#
# `cargo xtask kit` (xtask/src/kit.rs) runs each step script with `nice -n 19 bash <script>`, its
# output going to <kit>/logs/<step>.log, and with the environment the scripts rely on:
#   KIT_DIR, KIT_SRC (this directory), every KEY of versions.env, GOCACHE/GOMODCACHE/GOPATH (under
#   KIT_DIR), GOTOOLCHAIN=local, GOFLAGS, DOCKER_BUILDKIT=0, the output paths and image names
#   (KIND_BIN, K8S_BIN_DIR, PAUSE_BIN, ETCD_BIN, COREDNS_BIN, CRICTL_BIN, CNI_BIN_DIR,
#   KUBE_ROUTER_BIN, NETBASE_IMAGE, BASE_IMAGE, NODE_IMAGE, KUBE_ROUTER_IMAGE, PROBE_BASE_IMAGE,
#   COMPONENT_IMAGES_MAP), WORK_DIR (scratch space of this step) and STEP_INFO (a file of
#   key=value lines the step wants recorded in the kit manifest).
# The Rust side decides whether a step runs (cache keys) and checks its outputs afterwards; a
# script only has to be safe to re-run after a failure.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

log() { echo "[$(date +%T)] $*"; }

# info KEY VALUE: recorded under the step in <kit>/manifest.json.
info() { printf '%s=%s\n' "$1" "$2" >>"$STEP_INFO"; }

# debootstrap_rootfs DIR PACKAGES: a minbase rootfs of $DEBIAN_SUITE with PACKAGES (comma list).
# A finished rootfs of the same recipe is reused (a step that failed after debootstrap re-runs
# fast); anything else is thrown away first.
debootstrap_rootfs() {
  local dir=$1 pkgs=$2 recipe="$DEBIAN_SUITE minbase $2"
  if [ -f "$dir/.netreach-debootstrap" ] && [ "$(cat "$dir/.netreach-debootstrap")" = "$recipe" ]; then
    log "reusing the rootfs in $dir"
    return
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  # The Debian mirror this host's apt already uses (DEBIAN_MIRROR overrides): the kit names no
  # package host of its own.
  local mirror=${DEBIAN_MIRROR:-}
  if [ -z "$mirror" ]; then
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  fi
  if [ -z "$mirror" ]; then
    mirror=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  fi
  if [ -z "$mirror" ]; then
    echo "no Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list; set DEBIAN_MIRROR" >&2
    exit 1
  fi
  log "debootstrap --variant=minbase --include=$pkgs $DEBIAN_SUITE $dir $mirror"
  debootstrap --variant=minbase ${pkgs:+--include="$pkgs"} "$DEBIAN_SUITE" "$dir" "$mirror"
  echo "$recipe" >"$dir/.netreach-debootstrap"
}

# trim_rootfs DIR: drop what no container needs (docs, man pages, apt lists and caches).
trim_rootfs() {
  rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb \
    "$1"/usr/share/doc/* "$1"/usr/share/man/* "$1"/usr/share/info/*
}

# deb_versions DIR PKG...: "pkg=version" of installed packages, for the manifest.
deb_versions() {
  local dir=$1
  shift
  chroot "$dir" dpkg-query -W -f='${Package}=${Version} ' "$@"
}

# import_rootfs DIR IMAGE [--change ...]...: `docker import` of a rootfs directory (no registry).
import_rootfs() {
  local dir=$1 image=$2
  shift 2
  tar --numeric-owner --xattrs --exclude=./.netreach-debootstrap -C "$dir" -c . | docker import "$@" - "$image" >/dev/null
  log "imported $image"
}

# go_wrapper_module DIR: DIR/go.mod.in holds the wanted go.mod; when it differs from the last one
# tidied (or go.sum is missing), start over from it and `go mod tidy` (proxy + checksum DB).
go_wrapper_module() {
  local dir=$1
  if ! cmp -s "$dir/go.mod.in" "$dir/go.mod.tidied" 2>/dev/null || [ ! -f "$dir/go.sum" ]; then
    cp "$dir/go.mod.in" "$dir/go.mod"
    rm -f "$dir/go.sum" "$dir/go.mod.tidied"
    log "go mod tidy in $dir"
    (cd "$dir" && go mod tidy)
    cp "$dir/go.mod.in" "$dir/go.mod.tidied"
  fi
}

# mod_dir MODULE@VERSION: where the module's files are (downloading it if needed).
mod_dir() {
  go mod download -json "$1" | jq -r .Dir
}
