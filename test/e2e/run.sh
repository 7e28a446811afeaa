#!/usr/bin/env bash
# `npm run test:e2e`: builds Rayline's image, brings up a real cluster, loads the image into it and
# runs the end-to-end suite (test/e2e/*.e2e.ts) against whatever KUBECONFIG that cluster gives.
#   E2E_CLUSTER=local (default)  the real node of test/e2e/cluster/node.sh (needs root)
#   E2E_CLUSTER=kind             a kind cluster from test/e2e/kind.yaml (needs Docker with privileges)
#   E2E_KEEP=1                   leave the cluster running afterwards (node.sh down / kind delete)
# Extra arguments go to node --test (for example --test-name-pattern=upgrade).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.sh"
cluster=${E2E_CLUSTER:-local}
start=$SECONDS

# kubectl and helm for the suite, at the versions the operator's tests use.
BIN=$(bash "$REPO_ROOT/test/kube/assets.sh" $([ "$cluster" = local ] && echo --node))
export PATH="$BIN:$PATH"
bash "$HERE/image/build.sh" >/dev/null

case "$cluster" in
  local)
    bash "$HERE/cluster/node.sh" up >/dev/null
    bash "$HERE/cluster/node.sh" load "$RAYLINE_IMAGE"
    eval "export $(bash "$HERE/cluster/node.sh" env)"
    [ -n "${E2E_KEEP:-}" ] || trap 'bash "$HERE/cluster/node.sh" down' EXIT
    ;;
  kind)
    command -v kind >/dev/null || die "E2E_CLUSTER=kind needs kind on PATH (go install sigs.k8s.io/kind@v0.26.0)"
    kind create cluster --name rayline-e2e --config "$HERE/kind.yaml" --wait 120s
    kind load docker-image --name rayline-e2e "$RAYLINE_IMAGE"
    export KUBECONFIG="$E2E_CACHE/kind.kubeconfig"
    kind get kubeconfig --name rayline-e2e >"$KUBECONFIG"
    [ -n "${E2E_KEEP:-}" ] || trap 'kind delete cluster --name rayline-e2e' EXIT
    ;;
  *) die "E2E_CLUSTER must be local or kind, not '$cluster'" ;;
esac
log "cluster and image ready after $((SECONDS - start)) s"

cd "$REPO_ROOT"
RAYLINE_IMAGE="$RAYLINE_IMAGE" node --test --test-concurrency=1 --test-timeout=900000 "$@" 'test/e2e/*.e2e.ts'
log "end-to-end suite done in $((SECONDS - start)) s"
