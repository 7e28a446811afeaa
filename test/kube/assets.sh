#!/usr/bin/env bash
# Builds the Kubernetes parts the operator tests run against — kube-apiserver, kubectl, etcd and helm —
# from the Go module proxy, once per version, into a cache outside the repository. Prints the folder
# that holds them. With KUBEBUILDER_ASSETS set (setup-envtest's binaries) it builds only what that
# folder lacks (helm, usually).
# With --node it also builds what a real node needs for the end-to-end tests (test/e2e/cluster):
# kubelet, kube-proxy, kube-controller-manager, kube-scheduler and CoreDNS, into the same folder.
set -euo pipefail

K8S_VERSION=v1.34.4
ETCD_VERSION=v3.5.21
HELM_VERSION=v3.17.0
COREDNS_VERSION=v1.12.1
NODE_PARTS=false
[ "${1:-}" = --node ] && NODE_PARTS=true
CACHE_ROOT="${RAYLINE_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rayline/kube}"
BUILT="$CACHE_ROOT/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION"
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local

log() { echo "kube-assets: $*" >&2; }

# One throwaway module per tool; its go.mod pins what the upstream go.mod would have resolved locally.
build_kubernetes() { # build_kubernetes <cmd>...
  local work="$CACHE_ROOT/build/k8s-$K8S_VERSION" minor=${K8S_VERSION#v1.}
  minor=${minor%%.*}
  mkdir -p "$work" && cd "$work"
  if [ ! -f go.mod ]; then
    go mod init local/k8sbuild >/dev/null 2>&1
    go mod edit -go=1.24.0 -godebug=default=go1.24
    local gomod staging
    gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    for staging in $(awk '/=> .\/staging/ {print $1}' "$gomod"); do
      go mod edit -replace="$staging=$staging@v0.${K8S_VERSION#v1.}"
    done
  fi
  local pkgs=() c
  for c in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  go get "k8s.io/kubernetes@$K8S_VERSION" >&2
  local x="-X k8s.io/component-base/version" y="-X k8s.io/client-go/pkg/version"
  go build -trimpath -o "$BUILT/" -ldflags "-s -w \
    $x.gitVersion=$K8S_VERSION $x.gitMajor=1 $x.gitMinor=$minor $x.gitTreeState=clean \
    $y.gitVersion=$K8S_VERSION $y.gitMajor=1 $y.gitMinor=$minor $y.gitTreeState=clean" "${pkgs[@]}" >&2
}

build_module_tool() { # build_module_tool <name> <module@version> <package> [ldflags]
  local work="$CACHE_ROOT/build/$1"
  mkdir -p "$work" && cd "$work"
  [ -f go.mod ] || go mod init "local/$1" >/dev/null 2>&1
  go get "$2" >&2
  go build -trimpath -o "$BUILT/$1" -ldflags "-s -w ${4:-}" "$3" >&2
}

need() { # need <binary>: true when neither the cache nor KUBEBUILDER_ASSETS has it
  [ ! -x "$BUILT/$1" ] && { [ -z "${KUBEBUILDER_ASSETS:-}" ] || [ ! -x "$KUBEBUILDER_ASSETS/$1" ]; }
}

mkdir -p "$BUILT"
# Test files may start in parallel: one builds, the others wait for it instead of building again.
exec 9>"$CACHE_ROOT/.lock"
flock 9
k8s=()
need kube-apiserver && k8s+=(kube-apiserver)
need kubectl && k8s+=(kubectl)
if $NODE_PARTS; then
  for c in kubelet kube-proxy kube-controller-manager kube-scheduler; do [ -x "$BUILT/$c" ] || k8s+=("$c"); done
fi
if [ ${#k8s[@]} -gt 0 ]; then
  log "building ${k8s[*]} $K8S_VERSION (first run only: 10-25 minutes on 2 cores)"
  (build_kubernetes "${k8s[@]}")
fi
if need etcd; then
  log "building etcd $ETCD_VERSION"
  (build_module_tool etcd "go.etcd.io/etcd/server/v3@$ETCD_VERSION" go.etcd.io/etcd/server/v3)
fi
if need helm; then
  log "building helm $HELM_VERSION"
  (build_module_tool helm "helm.sh/helm/v3@$HELM_VERSION" helm.sh/helm/v3/cmd/helm \
    "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION")
fi
if $NODE_PARTS && [ ! -x "$BUILT/coredns" ]; then
  log "building coredns $COREDNS_VERSION"
  (build_module_tool coredns "github.com/coredns/coredns@$COREDNS_VERSION" github.com/coredns/coredns)
fi
if [ -z "${KUBEBUILDER_ASSETS:-}" ]; then
  echo "$BUILT"
  exit 0
fi
# One folder per KUBEBUILDER_ASSETS, linking its binaries and what was built for it: linking them into
# the versioned folder would make a later run without KUBEBUILDER_ASSETS use the wrong versions.
OUT="$CACHE_ROOT/envtest-$(printf %s "$KUBEBUILDER_ASSETS" | sha256sum | cut -c1-16)"
mkdir -p "$OUT"
node_parts=()
$NODE_PARTS && node_parts=(kubelet kube-proxy kube-controller-manager kube-scheduler coredns)
for b in kube-apiserver kubectl etcd helm "${node_parts[@]}"; do
  if [ -x "$KUBEBUILDER_ASSETS/$b" ]; then ln -sfn "$KUBEBUILDER_ASSETS/$b" "$OUT/$b"; else ln -sfn "$BUILT/$b" "$OUT/$b"; fi
done
echo "$OUT"
