#!/usr/bin/env bash
# Step kind: the kind CLI from the Go module proxy (no replace directives: plain go install).
source "$KIT_SRC/lib.sh"
mkdir -p "$(dirname "$KIND_BIN")"
log "go install sigs.k8s.io/kind@$KIND_VERSION"
GOBIN=$(dirname "$KIND_BIN") go install -trimpath "sigs.k8s.io/kind@$KIND_VERSION"
"$KIND_BIN" version
info version "$("$KIND_BIN" version)"
# The base image's recipe files come from the same module zip (base-image step).
info module_dir "$(mod_dir "sigs.k8s.io/kind@$KIND_VERSION")"
