#!/usr/bin/env bash
# Step component-images: one image per cluster component, from the binaries built before (no
# registry): static Go binaries on `FROM scratch`, kube-proxy (iptables) on the netbase image
# (kube-router has its own step). They are tagged netreach-kit/<name>:<tag> in Docker, so none of
# the user's registry.k8s.io images is shadowed; the node-image step renames them inside the
# node's containerd to exactly what `kubeadm config images list` prints. Writes
# COMPONENT_IMAGES_MAP: "<local name> <name in the node>" per line.
source "$KIT_SRC/lib.sh"
KUBEADM_IMAGES=$("$K8S_BIN_DIR/kubeadm" config images list --kubernetes-version "$K8S_VERSION")
echo "$KUBEADM_IMAGES"
want() { # the image kubeadm wants for component $1 (exactly one)
  local got
  got=$(echo "$KUBEADM_IMAGES" | grep -E "/$1:") || { echo "kubeadm wants no $1 image?" >&2; exit 1; }
  echo "$got"
}
local_name() { echo "netreach-kit/${1##*/}"; } # registry.k8s.io/coredns/coredns:v1.12.1 -> netreach-kit/coredns:v1.12.1
CTX=$WORK_DIR/ctx
rm -rf "$CTX"
mkdir -p "$CTX"
: >"$COMPONENT_IMAGES_MAP.tmp"
scratch_image() { # name binary dest entrypoint-json user
  local want_name local_img d=$CTX/$1
  want_name=$(want "$1")
  local_img=$(local_name "$want_name")
  mkdir -p "$d/rootfs/tmp" "$d/rootfs/etc"
  chmod 1777 "$d/rootfs/tmp"
  printf 'root:x:0:0:root:/:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n' >"$d/rootfs/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' >"$d/rootfs/etc/group"
  install -D -m 0755 "$2" "$d/rootfs$3"
  {
    echo "FROM scratch"
    echo "COPY rootfs/ /"
    echo "ENV PATH=/usr/local/bin:/usr/bin:/bin"
    if [ -n "$4" ]; then echo "ENTRYPOINT $4"; fi
    if [ -n "$5" ]; then echo "USER $5"; fi
  } >"$d/Dockerfile"
  docker build -q -t "$local_img" "$d" >/dev/null
  echo "$local_img $want_name" >>"$COMPONENT_IMAGES_MAP.tmp"
  log "built $local_img (for $want_name)"
}
netbase_image() { # name local-image binary dest entrypoint-json node-name
  local d=$CTX/$1
  mkdir -p "$d"
  install -m 0755 "$3" "$d/bin"
  {
    echo "FROM $NETBASE_IMAGE"
    echo "COPY bin $4"
    if [ -n "$5" ]; then echo "ENTRYPOINT $5"; fi
  } >"$d/Dockerfile"
  docker build -q -t "$2" "$d" >/dev/null
  echo "$2 $6" >>"$COMPONENT_IMAGES_MAP.tmp"
  log "built $2"
}
for c in kube-apiserver kube-controller-manager kube-scheduler; do
  scratch_image "$c" "$K8S_BIN_DIR/$c" "/usr/local/bin/$c" "" ""
done
netbase_image kube-proxy "$(local_name "$(want kube-proxy)")" "$K8S_BIN_DIR/kube-proxy" /usr/local/bin/kube-proxy "" "$(want kube-proxy)"
scratch_image etcd "$ETCD_BIN" /usr/local/bin/etcd "" ""
scratch_image coredns "$COREDNS_BIN" /coredns '["/coredns"]' ""
scratch_image pause "$PAUSE_BIN" /pause '["/pause"]' 65535:65535
# kind v0.31.0's containerd config names its own sandbox image: the same pause under that tag too.
echo "$(local_name "$(want pause)") registry.k8s.io/pause:$KIND_SANDBOX_PAUSE_TAG" >>"$COMPONENT_IMAGES_MAP.tmp"
mv "$COMPONENT_IMAGES_MAP.tmp" "$COMPONENT_IMAGES_MAP"
cat "$COMPONENT_IMAGES_MAP"
rm -rf "$CTX"
