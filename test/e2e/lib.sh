# Shared by the end-to-end scripts: where their caches live and small helpers. Sourced, not run.
E2E_CACHE="${RAYLINE_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rayline/e2e}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RAYLINE_IMAGE="${RAYLINE_IMAGE:-rayline/rayline:0.1.0}"
NODE_BASE_IMAGE=rayline/node-base:24
mkdir -p "$E2E_CACHE"

log() { echo "e2e: $*" >&2; }
die() { echo "e2e: $*" >&2; exit 1; }

# The Debian packages the real node and the image build need; installed once (as root).
ensure_packages() {
  local missing=() p
  for p in containerd runc containernetworking-plugins umoci skopeo iptables conntrack socat docker.io \
    mmdebstrap gcc libc6-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "needs root to install: ${missing[*]}"
  log "installing ${missing[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
  local timeout=$1 start=$SECONDS
  shift
  until "$@" >/dev/null 2>&1; do
    [ $((SECONDS - start)) -ge "$timeout" ] && return 1
    sleep 0.2
  done
}
