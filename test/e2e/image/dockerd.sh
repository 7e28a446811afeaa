#!/usr/bin/env bash
# Starts a Docker daemon (Debian's docker.io) for building images, unless one already answers.
# Its data root is Docker's default, outside the repository, so layers stay cached between runs.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
docker info >/dev/null 2>&1 && exit 0
ensure_packages
[ "$(id -u)" = 0 ] || die "dockerd is not running and only root can start it"
log "starting dockerd (log: $E2E_CACHE/dockerd.log)"
# setsid: the daemon outlives this script and the test run; later runs reuse it.
setsid dockerd --iptables=false --bridge=none >"$E2E_CACHE/dockerd.log" 2>&1 </dev/null &
wait_for 60 docker info || die "dockerd did not answer within 60 s; see $E2E_CACHE/dockerd.log"
