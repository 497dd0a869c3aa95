#!/usr/bin/env bash
# Step kube-router-image: kube-router on the netbase image (iptables, ipset; the iptables wrapper
# picks the node's backend). Used as the node image's CNI and, with the published node image, as the
# firewall-only enforcer beside kindnetd when kindnetd does not enforce.
source "$KIT_SRC/lib.sh"
CTX=$WORK_DIR/ctx
rm -rf "$CTX"
mkdir -p "$CTX"
install -m 0755 "$KUBE_ROUTER_BIN" "$CTX/kube-router"
printf 'FROM %s\nCOPY kube-router /usr/local/bin/kube-router\nENTRYPOINT ["/usr/local/bin/kube-router"]\n' "$NETBASE_IMAGE" >"$CTX/Dockerfile"
docker build -q -t "$KUBE_ROUTER_IMAGE" "$CTX" >/dev/null
rm -rf "$CTX"
docker run --rm --entrypoint sh "$KUBE_ROUTER_IMAGE" -c 'kube-router --version && iptables --version && command -v ipset'
