#!/usr/bin/env bash
# Step node-image: what `kind build node-image` does, minus every network pull: run the base image,
# copy kubeadm/kubelet/kubectl in, import the component images into the node's containerd (k8s.io
# namespace, pinned) under the names kubeadm asks for, add kube-router as /kind/manifests/
# default-cni.yaml (kind's "Installing CNI" applies that file), commit.
source "$KIT_SRC/lib.sh"
C=netreach-kit-node-build
docker rm -f -v "$C" >/dev/null 2>&1 || true
trap 'docker rm -f -v "$C" >/dev/null 2>&1 || true' EXIT
docker run -d --entrypoint=sleep --name="$C" --security-opt seccomp=unconfined "$BASE_IMAGE" infinity >/dev/null
for b in kubeadm kubelet kubectl; do
  docker cp "$K8S_BIN_DIR/$b" "$C:/usr/bin/$b"
  docker exec "$C" chown root:root "/usr/bin/$b"
  docker exec "$C" chmod 0755 "/usr/bin/$b"
done
docker exec "$C" sh -c "mkdir -p /kind/manifests && printf '%s' '$K8S_VERSION' > /kind/version"
sed "s#KUBE_ROUTER_IMAGE#docker.io/$KUBE_ROUTER_IMAGE#" "$KIT_SRC/manifests/kube-router-cni.yaml" |
  docker exec -i "$C" sh -c 'cat > /kind/manifests/default-cni.yaml'
docker exec "$C" bash -c 'nohup containerd > /var/log/containerd-build.log 2>&1 &'
docker exec "$C" bash -c 'for i in $(seq 60); do [ -S /run/containerd/containerd.sock ] && ctr version >/dev/null 2>&1 && exit 0; sleep 1; done; exit 1'
LOCAL="$(awk '{print $1}' "$COMPONENT_IMAGES_MAP" | sort -u) $KUBE_ROUTER_IMAGE"
log "importing into the node's containerd: $(echo $LOCAL)"
# shellcheck disable=SC2086
docker save $LOCAL | docker exec -i "$C" ctr --namespace=k8s.io images import \
  --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests -
while read -r local want; do
  if [ "docker.io/$local" != "$want" ]; then
    docker exec "$C" ctr --namespace=k8s.io images tag --force "docker.io/$local" "$want" >/dev/null
  fi
done <"$COMPONENT_IMAGES_MAP"
# drop the netreach-kit/ names that only served the import (the content stays: it is the same image)
while read -r local want; do
  if [ "docker.io/$local" != "$want" ]; then
    docker exec "$C" ctr --namespace=k8s.io images rm "docker.io/$local" >/dev/null 2>&1 || true
  fi
done <"$COMPONENT_IMAGES_MAP"
HAVE=$(docker exec "$C" ctr --namespace=k8s.io images list -q)
echo "--- the node's containerd has:"
grep -v '^sha256:' <<<"$HAVE" | sort
missing=0
for i in $(docker exec "$C" kubeadm config images list --kubernetes-version "$K8S_VERSION") \
  "registry.k8s.io/pause:$KIND_SANDBOX_PAUSE_TAG" "docker.io/$KUBE_ROUTER_IMAGE"; do
  grep -qx "$i" <<<"$HAVE" || {
    echo "MISSING in the node image: $i"
    missing=1
  }
done
[ "$missing" = 0 ]
docker exec "$C" pkill containerd || true
for i in $(seq 20); do docker exec "$C" pgrep -x containerd >/dev/null || break; sleep 0.5; done
docker exec "$C" rm -f /var/log/containerd-build.log
docker commit --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' \
  --change 'ENV HTTP_PROXY="" HTTPS_PROXY="" NO_PROXY=""' "$C" "$NODE_IMAGE" >/dev/null
log "committed $NODE_IMAGE"
