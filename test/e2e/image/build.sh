#!/usr/bin/env bash
# Builds Rayline's image from the repository's Dockerfile, offline: a local Docker daemon, the
# locally made rayline/node-base:24 as NODE_IMAGE, and the build's own network access to the npm
# registry only (for npm ci inside the build). Docker's layer cache makes a rebuild pay only for
# what changed. Prints the image name.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
bash "$(dirname "$0")/dockerd.sh"
bash "$(dirname "$0")/node-base.sh"
start=$SECONDS
log "building $RAYLINE_IMAGE from the Dockerfile"
docker build --network host --build-arg "NODE_IMAGE=$NODE_BASE_IMAGE" -t "$RAYLINE_IMAGE" "$REPO_ROOT" \
  >"$E2E_CACHE/image-build.log" 2>&1 || { tail -n 30 "$E2E_CACHE/image-build.log" >&2; die "image build failed"; }
size=$(docker image inspect -f '{{.Size}}' "$RAYLINE_IMAGE" | numfmt --to=iec)
log "built $RAYLINE_IMAGE in $((SECONDS - start)) s ($size)"
echo "$RAYLINE_IMAGE"
