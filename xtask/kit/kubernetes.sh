#!/usr/bin/env bash
# Step kubernetes: kubeadm, kubelet, kubectl and the control-plane binaries of $K8S_VERSION from the
# Go module proxy, plus the static pause binary.
# k8s.io/kubernetes cannot be `go install`ed: its go.mod replaces every staging module (k8s.io/api,
# ...) with ./staging paths. A wrapper module requires it and replaces each staging module with its
# published k8s.io/<name> $K8S_STAGING_VERSION (a dependency's replaces are ignored, so the wrapper
# must carry them all, and its godebug line). The version ldflags are what hack/lib/version.sh sets;
# without them kubeadm and kubelet report v0.0.0 and break.
source "$KIT_SRC/lib.sh"
V=$K8S_VERSION
MINOR=$(echo "$V" | cut -d. -f2)
W=$KIT_DIR/go/wrappers/kubernetes-$V
mkdir -p "$W" "$K8S_BIN_DIR" "$(dirname "$PAUSE_BIN")"
log "go mod download k8s.io/kubernetes@$V"
KDIR=$(mod_dir "k8s.io/kubernetes@$V")
UP=$KDIR/go.mod
COMPONENTS="kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy"
{
  echo "module netreach.local/kubernetes-wrapper"
  echo
  grep '^go ' "$UP"
  grep '^godebug' "$UP" || true
  echo
  echo "require k8s.io/kubernetes $V"
  echo
  for m in $(grep -E '=> \./staging/' "$UP" | awk '{print $1}'); do echo "replace $m => $m $K8S_STAGING_VERSION"; done
  echo
  for c in $COMPONENTS; do echo "tool k8s.io/kubernetes/cmd/$c"; done
} >"$W/go.mod.in"
go_wrapper_module "$W"
INFO=$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$V.info
COMMIT=$(jq -r '.Origin.Hash // empty' "$INFO")
BUILD_DATE=$(jq -r .Time "$INFO") # the tag's time: reproducible
LDF=""
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  LDF+=" -X '$pkg.gitVersion=$V' -X '$pkg.gitMajor=1' -X '$pkg.gitMinor=$MINOR' -X '$pkg.gitTreeState=clean' -X '$pkg.buildDate=$BUILD_DATE'"
  if [ -n "$COMMIT" ]; then LDF+=" -X '$pkg.gitCommit=$COMMIT'"; fi
done
PKGS=""
for c in $COMPONENTS; do PKGS+=" k8s.io/kubernetes/cmd/$c"; done
log "go build $COMPONENTS (one build: shared compile work; cold: tens of minutes on 2 cores)"
# shellcheck disable=SC2086
(cd "$W" && CGO_ENABLED=0 go build -trimpath -tags=selinux,notest,grpcnotrace \
  -ldflags "all=$LDF -s -w" -o "$K8S_BIN_DIR/" $PKGS)
log "pause (C, static)"
gcc -Os -Wall -Werror -static -DVERSION="$V-netreach" -o "$PAUSE_BIN" "$KDIR/build/pause/linux/pause.c"
strip "$PAUSE_BIN"
"$K8S_BIN_DIR/kubeadm" version -o short
info kubeadm "$("$K8S_BIN_DIR/kubeadm" version -o short)"
info kubelet "$("$K8S_BIN_DIR/kubelet" --version)"
info kubectl "$("$K8S_BIN_DIR/kubectl" version --client -o json | jq -r .clientVersion.gitVersion)"
info build_date "$BUILD_DATE"
info git_commit "${COMMIT:-unknown: no Origin in the proxy .info}"
