#!/usr/bin/env bash
# Builds the two images a node needs besides Rayline's, without a registry, as Docker images:
# registry.k8s.io/pause:3.10 (the sandbox, compiled from the pause.c of the kubernetes module that
# test/kube/assets.sh builds from) and rayline-e2e/coredns:local (the CoreDNS binary it built).
#   support-images.sh BIN_DIR
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
BIN=$1
K8S_VERSION=$(sed -n 's/^K8S_VERSION=//p' "$REPO_ROOT/test/kube/assets.sh")
bash "$REPO_ROOT/test/e2e/image/dockerd.sh"

scratch_image() { # scratch_image IMAGE FILE ENTRYPOINT-JSON: FILE as /<name> in an empty image
  local image=$1 file=$2 entrypoint=$3 key ctx
  key=$(sha256sum "$file" | cut -c1-16)
  [ "$(docker image inspect -f '{{index .Config.Labels "dev.rayline.key"}}' "$image" 2>/dev/null)" = "$key" ] && return 0
  ctx=$(mktemp -d)
  cp "$file" "$ctx/"
  printf 'FROM scratch\nCOPY %s /%s\nLABEL dev.rayline.key=%s\nENTRYPOINT %s\n' \
    "$(basename "$file")" "$(basename "$file")" "$key" "$entrypoint" >"$ctx/Dockerfile"
  docker build -q -t "$image" "$ctx" >/dev/null
  rm -rf "$ctx"
  log "built $image"
}

pause="$E2E_CACHE/pause-$K8S_VERSION"
if [ ! -x "$pause" ]; then
  src=$(GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  gcc -Os -static -Wall -DVERSION="$K8S_VERSION" -o "$pause.tmp" "$src/build/pause/linux/pause.c"
  strip "$pause.tmp" && mv "$pause.tmp" "$pause"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$pause" "$work/pause"
scratch_image registry.k8s.io/pause:3.10 "$work/pause" '["/pause"]'
scratch_image rayline-e2e/coredns:local "$BIN/coredns" '["/coredns"]'
