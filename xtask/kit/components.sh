#!/usr/bin/env bash
# Steps etcd, coredns, crictl, cni-plugins, kube-router: the other components from the Go module
# proxy. Usage: components.sh <component>.
# `go install mod/pkg@v` reads the module's @v/list for deprecation notices, and the proxy answers
# 403 for some lists: those are built through a one-require wrapper module instead.
source "$KIT_SRC/lib.sh"
export CGO_ENABLED=0

# wrapper_build NAME MODULE VERSION PKG OUT LDFLAGS [EXTRA go.mod LINES]
wrapper_build() {
  local w=$KIT_DIR/go/wrappers/$1-$3
  mkdir -p "$w" "$(dirname "$5")"
  printf 'module netreach.local/%s-wrapper\n\ngo 1.24\n\nrequire %s %s\n\ntool %s\n%s\n' "$1" "$2" "$3" "$4" "${7:-}" >"$w/go.mod.in"
  go_wrapper_module "$w"
  log "go build $4"
  (cd "$w" && go build -trimpath -ldflags "-s -w $6" -o "$5" "$4")
}

case "${1:?component}" in
etcd)
  # The server module replaces its siblings with ../ paths: a wrapper carries those replaces.
  W=$KIT_DIR/go/wrappers/etcd-$ETCD_VERSION
  mkdir -p "$W" "$(dirname "$ETCD_BIN")"
  D=$(mod_dir "go.etcd.io/etcd/server/v3@$ETCD_VERSION")
  {
    echo "module netreach.local/etcd-wrapper"
    echo
    grep '^go ' "$D/go.mod"
    echo
    echo "require go.etcd.io/etcd/server/v3 $ETCD_VERSION"
    echo
    grep -E '=> \.\./' "$D/go.mod" | awk -v v="$ETCD_VERSION" '{print "replace " $1 " => " $1 " " v}'
    echo
    echo "tool go.etcd.io/etcd/server/v3"
  } >"$W/go.mod.in"
  go_wrapper_module "$W"
  log "go build go.etcd.io/etcd/server/v3"
  (cd "$W" && go build -trimpath -ldflags "-s -w" -o "$ETCD_BIN" go.etcd.io/etcd/server/v3)
  "$ETCD_BIN" --version
  info version "$("$ETCD_BIN" --version | head -1)"
  ;;
coredns)
  log "go install github.com/coredns/coredns@$COREDNS_VERSION"
  mkdir -p "$(dirname "$COREDNS_BIN")"
  GOBIN=$(dirname "$COREDNS_BIN") go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
  info version "$("$COREDNS_BIN" -version | head -1)"
  ;;
crictl)
  # v1.34.0 is served but absent from the checksum DB: skip the DB for this module only. It pins
  # k8s.io/* v0.34.0-rc.2, also absent: require the staging release instead (MVS lifts them).
  extra="require ("
  for k in api apimachinery client-go cri-api cri-client kubectl kubelet cli-runtime component-base; do
    extra+=$'\n\t'"k8s.io/$k $K8S_STAGING_VERSION"
  done
  extra+=$'\n)'
  GONOSUMDB=sigs.k8s.io/cri-tools wrapper_build crictl sigs.k8s.io/cri-tools "$CRICTL_VERSION" \
    sigs.k8s.io/cri-tools/cmd/crictl "$CRICTL_BIN" "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" "$extra"
  info version "$("$CRICTL_BIN" --version)"
  ;;
cni-plugins)
  P=github.com/containernetworking/plugins/plugins
  mkdir -p "$CNI_BIN_DIR"
  log "go install the CNI plugins $CNI_PLUGINS_VERSION"
  GOBIN=$CNI_BIN_DIR go install -trimpath \
    -ldflags "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION" \
    "$P/ipam/host-local@$CNI_PLUGINS_VERSION" "$P/main/loopback@$CNI_PLUGINS_VERSION" \
    "$P/meta/portmap@$CNI_PLUGINS_VERSION" "$P/main/ptp@$CNI_PLUGINS_VERSION" "$P/main/bridge@$CNI_PLUGINS_VERSION"
  ls -l "$CNI_BIN_DIR"
  info version "$CNI_PLUGINS_VERSION"
  ;;
kube-router)
  # v2.10.0 pins a netlink pseudo-version the proxy refuses (403) or the checksum DB lacks:
  # $KUBE_ROUTER_NETLINK_VERSION compiles, and enforcement was verified with it.
  wrapper_build kube-router github.com/cloudnativelabs/kube-router/v2 "$KUBE_ROUTER_VERSION" \
    github.com/cloudnativelabs/kube-router/v2/cmd/kube-router "$KUBE_ROUTER_BIN" \
    "-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION -X github.com/cloudnativelabs/kube-router/v2/pkg/version.BuildDate=netreach-kit" \
    "replace github.com/vishvananda/netlink => github.com/vishvananda/netlink $KUBE_ROUTER_NETLINK_VERSION"
  "$KUBE_ROUTER_BIN" --version
  info version "$("$KUBE_ROUTER_BIN" --version 2>&1 | head -1 | sed "s/^Running .*kube-router //")"
  ;;
*)
  echo "unknown component $1" >&2
  exit 2
  ;;
esac
