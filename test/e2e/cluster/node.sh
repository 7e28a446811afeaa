#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, for the end-to-end tests: etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and kube-proxy (built by
# test/kube/assets.sh --node), containerd + runc + CNI plugins from Debian, and CoreDNS as a pod.
# Everything runs inside the network namespace rayline-e2e, which has no route out; the API server
# is bridged to 127.0.0.1:$RAYLINE_E2E_API_PORT in this namespace through a unix socket.
#
#   node.sh up            start (or restart) the cluster; prints KUBECONFIG=...
#   node.sh down          stop every process it started, remove pods, mounts and the namespace
#   node.sh exec CMD...   run CMD inside the cluster's network namespace (KUBECONFIG set for it)
#   node.sh load IMAGE... import Docker images into the node's containerd
#
# Needs root (namespaces, mounts, containerd). Images stay cached in containerd's root between runs.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

NETNS=rayline-e2e
NETNS_PATH=/var/run/netns/$NETNS
NODE_IP=10.250.0.1
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16
DNS_IP=10.96.0.10
API_PORT="${RAYLINE_E2E_API_PORT:-16443}"
DIR="$E2E_CACHE/cluster"
RUN="$DIR/run"                       # state of one cluster: removed by down
ETC="$DIR/etc"                       # configs and certificates: rewritten by up
CONTAINERD_ROOT="$DIR/containerd"    # images survive down
KUBECONFIG_HOST="$DIR/kubeconfig"    # for the host namespace (127.0.0.1:$API_PORT)
KUBECONFIG_NODE="$ETC/admin.kubeconfig"  # inside the namespace
CTR=(ctr --address "$RUN/containerd/containerd.sock" -n k8s.io)

in_ns() { nsenter --net="$NETNS_PATH" "$@"; }

# start NAME CMD...: runs CMD in the namespace, detached, its output in $RUN/NAME.log.
start() {
  local name=$1
  shift
  setsid nsenter --net="$NETNS_PATH" "$@" >"$RUN/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

stop_process() { # stop_process NAME: TERM, then KILL after 5 s
  local pidfile="$RUN/$1.pid" pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    wait_for 5 bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

assets() {
  BIN=$(bash "$REPO_ROOT/test/kube/assets.sh" --node)
}

make_network() {
  [ -e "$NETNS_PATH" ] && return 0
  ip netns add "$NETNS"
  in_ns ip link set lo up
  # A bridge without ports stands in for the node's uplink (this kernel has no dummy links): the
  # node's address lives on it, and every packet with no better route dies here, never leaving.
  in_ns ip link add node0 type bridge
  in_ns ip addr add "$NODE_IP/24" dev node0
  in_ns ip link set node0 up
  in_ns ip route add default dev node0
  in_ns sysctl -qw net.ipv4.ip_forward=1
}

make_pki() {
  [ -f "$ETC/ca.crt" ] && return 0
  mkdir -p "$ETC"
  local ssl=(openssl)
  (
    cd "$ETC"
    "${ssl[@]}" req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj /CN=rayline-e2e-ca 2>/dev/null
    "${ssl[@]}" req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj /CN=kube-apiserver 2>/dev/null
    "${ssl[@]}" x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -out apiserver.crt \
      -extfile <(echo "subjectAltName=IP:127.0.0.1,IP:$NODE_IP,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local") 2>/dev/null
    "${ssl[@]}" req -newkey rsa:2048 -nodes -keyout kubelet-client.key -out kubelet-client.csr \
      -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" 2>/dev/null
    "${ssl[@]}" x509 -req -in kubelet-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -out kubelet-client.crt 2>/dev/null
    "${ssl[@]}" genrsa -out sa.key 2048 2>/dev/null
    "${ssl[@]}" rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    admin=$(openssl rand -hex 16) node=$(openssl rand -hex 16)
    printf '%s,admin,admin,"system:masters"\n%s,system:node:node1,node1,"system:nodes"\n' "$admin" "$node" >tokens.csv
    echo "$admin" >admin.token
    echo "$node" >node.token
  )
}

kubeconfig() { # kubeconfig SERVER TOKEN
  cat <<YAML
apiVersion: v1
kind: Config
clusters:
  - name: rayline-e2e
    cluster: {server: "$1", certificate-authority-data: "$(base64 -w0 "$ETC/ca.crt")"}
users:
  - name: user
    user: {token: "$2"}
contexts:
  - name: rayline-e2e
    context: {cluster: rayline-e2e, user: user, namespace: default}
current-context: rayline-e2e
YAML
}

write_configs() {
  mkdir -p "$ETC/cni" "$RUN"
  kubeconfig "https://$NODE_IP:6443" "$(cat "$ETC/admin.token")" >"$KUBECONFIG_NODE"
  kubeconfig "https://127.0.0.1:$API_PORT" "$(cat "$ETC/admin.token")" >"$KUBECONFIG_HOST"
  kubeconfig "https://$NODE_IP:6443" "$(cat "$ETC/node.token")" >"$ETC/node.kubeconfig"
  echo "nameserver $NODE_IP" >"$ETC/resolv.conf"
  cat >"$ETC/containerd.toml" <<TOML
version = 2
root = "$CONTAINERD_ROOT"
state = "$RUN/containerd/state"
[grpc]
  address = "$RUN/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  # Lowering oom_score_adj needs CAP_SYS_RESOURCE, which this machine lacks.
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$ETC/cni"
TOML
  cat >"$ETC/cni/10-rayline-e2e.conflist" <<JSON
{"cniVersion": "0.4.0", "name": "rayline-e2e", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "subnet": "$POD_CIDR", "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": "$RUN/cni-ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
JSON
  cat >"$ETC/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failSwapOn: false
failCgroupV1: false
oomScoreAdj: 0
maxOpenFiles: 20000
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
resolvConf: $ETC/resolv.conf
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
containerRuntimeEndpoint: unix://$RUN/containerd/containerd.sock
volumePluginDir: $RUN/volume-plugins
podLogsDir: $RUN/pod-logs
address: $NODE_IP
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $ETC/ca.crt}
authorization: {mode: Webhook}
serializeImagePulls: false
YAML
  cat >"$ETC/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $KUBECONFIG_NODE}
hostnameOverride: node1
clusterCIDR: 10.244.0.0/16
oomScoreAdj: 0
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
}

api_ready() { in_ns "$BIN/kubectl" --kubeconfig "$KUBECONFIG_NODE" get --raw /readyz; }

up() {
  [ "$(id -u)" = 0 ] || die "the local cluster needs root (network namespace, containerd, kubelet)"
  ensure_packages
  assets
  local t0=$SECONDS
  down_processes
  make_network
  make_pki
  write_configs
  mkdir -p "$RUN/containerd" "$RUN/etcd"
  start containerd containerd --config "$ETC/containerd.toml"
  start etcd "$BIN/etcd" --data-dir "$RUN/etcd" --listen-client-urls http://127.0.0.1:2379 \
    --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380 --unsafe-no-fsync
  start kube-apiserver "$BIN/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
    --bind-address=0.0.0.0 --advertise-address="$NODE_IP" --secure-port=6443 \
    --tls-cert-file="$ETC/apiserver.crt" --tls-private-key-file="$ETC/apiserver.key" \
    --client-ca-file="$ETC/ca.crt" --token-auth-file="$ETC/tokens.csv" \
    --authorization-mode=Node,RBAC --service-cluster-ip-range="$SERVICE_CIDR" --allow-privileged=true \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$ETC/sa.pub" --service-account-signing-key-file="$ETC/sa.key" \
    --kubelet-client-certificate="$ETC/kubelet-client.crt" --kubelet-client-key="$ETC/kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP
  # The API server is reached from this namespace through a unix socket, never a non-loopback address.
  start api-bridge-ns socat "UNIX-LISTEN:$RUN/api.sock,fork,unlink-early" "TCP:$NODE_IP:6443"
  setsid socat "TCP-LISTEN:$API_PORT,bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$RUN/api.sock" \
    >"$RUN/api-bridge-host.log" 2>&1 </dev/null &
  echo $! >"$RUN/api-bridge-host.pid"
  wait_for 90 api_ready || die "kube-apiserver not ready within 90 s; see $RUN/kube-apiserver.log"
  local common=(--kubeconfig="$KUBECONFIG_NODE" --authentication-kubeconfig="$KUBECONFIG_NODE"
    --authorization-kubeconfig="$KUBECONFIG_NODE" --leader-elect=false --bind-address=127.0.0.1)
  start kube-controller-manager "$BIN/kube-controller-manager" "${common[@]}" \
    --service-account-private-key-file="$ETC/sa.key" --root-ca-file="$ETC/ca.crt" \
    --cluster-cidr=10.244.0.0/16 --service-cluster-ip-range="$SERVICE_CIDR" \
    --use-service-account-credentials=false
  start kube-scheduler "$BIN/kube-scheduler" "${common[@]}"
  wait_for 30 test -S "$RUN/containerd/containerd.sock" || die "containerd did not start; see $RUN/containerd.log"
  load_support_images
  start kubelet "$BIN/kubelet" --config="$ETC/kubelet.yaml" --kubeconfig="$ETC/node.kubeconfig" \
    --hostname-override=node1 --node-ip="$NODE_IP" --root-dir="$RUN/kubelet" --cert-dir="$RUN/kubelet-pki"
  start kube-proxy "$BIN/kube-proxy" --config="$ETC/kube-proxy.yaml"
  local k=("$BIN/kubectl" --kubeconfig "$KUBECONFIG_NODE")
  wait_for 60 in_ns "${k[@]}" wait --for=condition=Ready node/node1 --timeout=1s ||
    die "node not Ready within 60 s; see $RUN/kubelet.log"
  in_ns "${k[@]}" apply -f "$(dirname "$0")/coredns.yaml" >/dev/null
  in_ns "${k[@]}" -n kube-system rollout status deployment/coredns --timeout=120s >/dev/null ||
    die "CoreDNS not ready; see kubectl -n kube-system logs deploy/coredns"
  log "cluster up in $((SECONDS - t0)) s"
  echo "KUBECONFIG=$KUBECONFIG_HOST"
}

# The sandbox image and CoreDNS, built from sources here (no registry), then imported.
load_support_images() {
  bash "$(dirname "$0")/support-images.sh" "$BIN"
  load_images registry.k8s.io/pause:3.10 rayline-e2e/coredns:local
}

load_images() { # load_images IMAGE...: imports each Docker image unless containerd already has that build
  local image id stamp
  mkdir -p "$DIR/loaded"
  for image in "$@"; do
    id=$(docker image inspect -f '{{.Id}}' "$image") || die "no Docker image $image"
    stamp="$DIR/loaded/$(echo "$image" | tr '/:' '__')"
    if [ "$(cat "$stamp" 2>/dev/null)" = "$id" ] && "${CTR[@]}" images ls -q | grep -qx "docker.io/$image\|$image"; then
      continue
    fi
    log "loading $image into the node"
    docker save "$image" | "${CTR[@]}" images import --all-platforms - >/dev/null
    echo "$id" >"$stamp"
  done
}

down_processes() {
  local name
  for name in kube-proxy kubelet; do stop_process "$name"; done
  if [ -S "$RUN/containerd/containerd.sock" ] && [ -f "$RUN/containerd.pid" ]; then
    # Pods outlive the kubelet: kill their containers before containerd goes.
    local id
    for id in $("${CTR[@]}" tasks ls -q 2>/dev/null); do "${CTR[@]}" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
    for id in $("${CTR[@]}" tasks ls -q 2>/dev/null); do "${CTR[@]}" tasks delete -f "$id" >/dev/null 2>&1 || true; done
    for id in $("${CTR[@]}" containers ls -q 2>/dev/null); do "${CTR[@]}" containers delete "$id" >/dev/null 2>&1 || true; done
  fi
  for name in kube-scheduler kube-controller-manager api-bridge-host api-bridge-ns kube-apiserver etcd containerd; do
    stop_process "$name"
  done
  # Volumes the kubelet mounted (service account tokens, secrets) and the sandboxes' namespaces.
  local m
  for m in $(awk -v run="$RUN/" 'index($2, run) == 1 {print $2}' /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
  for m in $(find /var/run/netns -maxdepth 1 -name 'cni-*' -printf '%f\n' 2>/dev/null); do
    ip netns pids "$m" 2>/dev/null | grep -q . || ip netns delete "$m" 2>/dev/null || true
  done
  rm -rf /var/lib/cni/results/rayline-e2e-* "$RUN"
  mkdir -p "$RUN"
}

down() {
  down_processes
  [ -e "$NETNS_PATH" ] && ip netns delete "$NETNS"
  log "cluster down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  exec)
    shift
    KUBECONFIG="$KUBECONFIG_NODE" in_ns "$@"
    ;;
  load)
    shift
    load_images "$@"
    ;;
  env) echo "KUBECONFIG=$KUBECONFIG_HOST" ;;
  *) die "usage: node.sh up | down | exec CMD... | load IMAGE... | env" ;;
esac
