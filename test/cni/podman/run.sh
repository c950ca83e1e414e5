#!/usr/bin/env bash
# The CNI plugin under a real runtime: podman (its CNI backend) runs a busybox container on a
# portmap-isolator network in a lab, for each cniVersion podman's CNI library takes. Proves TCP
# from the world reaches the container on its mapped port and not on an unmapped port of the
# managed range, and that stopping it (CNI DEL) leaves no container object: veth, port filters,
# podman's pinned netns, record, sandbox snapshot. Prints "N passed, N failed"; non-zero on failure.
#
# Installs podman, crun and busybox-static with apt-get when missing; needs dist/ (npm run build).
# The lab is ../lab.sh's (pmi-lab-<pid>-host/-world, 198.18.0.0/24); podman's storage, run root and
# configuration live in a temp dir; all are removed on exit. The root namespace is never touched.
#
# Running podman in a lab namespace: every podman command runs in ONE `ip netns exec` shell (each
# has its own mount namespace, where podman pins the sandbox under /run/netns: a `podman stop`
# from another shell would skip DEL); that shell remounts the cgroup v1 hierarchies on the fresh
# /sys that `ip netns exec` mounts (cgroup2 left out: crun refuses the hybrid layout); no
# CAP_SYS_RESOURCE here, hence --ulimit at the hard limits; vfs storage, cgroupfs, file events,
# an image imported from busybox-static (no registry).
set -uo pipefail
cd "$(dirname "$0")/../../.."
REPO=$PWD
# Not 1.1.0: podman 4.3's CNI library (libcni 1.1) answers "unsupported CNI result version".
VERSIONS=(1.0.0 0.4.0)

source test/cni/lab.sh
stage_prepare podman podman crun busybox-static || exit 1
H=$LAB_HOST
W=$LAB_WORLD
TMP=$(mktemp -d /tmp/pmi-podman-XXXXXX)
cleanup() {
  lab_down
  rm -rf "$TMP"
}
trap cleanup EXIT
if ! lab_up; then
  echo "podman: cannot build the lab"
  echo "0 passed, 1 failed"
  exit 1
fi

# The plugin, podman's configuration and storage, the image's rootfs.
mkdir -p "$TMP"/{cni-bin,net.d,work,tmp,rootfs/bin,rootfs/etc,rootfs/tmp}
install_plugin "$TMP/cni-bin"
cat >"$TMP/containers.conf" <<EOF
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$TMP/events.log"
runtime = "crun"
tmp_dir = "$TMP/tmp"
[network]
network_backend = "cni"
network_config_dir = "$TMP/net.d"
cni_plugin_dirs = ["$TMP/cni-bin"]
default_network = "pmi"
EOF
cat >"$TMP/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$TMP/storage"
runroot = "$TMP/run"
EOF
cp /bin/busybox "$TMP/rootfs/bin/busybox"
for app in sh httpd mkdir echo sleep; do ln -s busybox "$TMP/rootfs/bin/$app"; done
awk '$3 == "cgroup" { print $2, $4 }' /proc/self/mounts >"$TMP/cgroups"

# Everything podman does, in one shell in the lab host. Prints "ok …" / "FAIL …" lines.
cat >"$TMP/inner.sh" <<'INNER'
set -u
TMP=$1 REPO=$2 H=$3 W=$4
shift 4
export CONTAINERS_CONF=$TMP/containers.conf CONTAINERS_STORAGE_CONF=$TMP/storage.conf
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; }
mount -t tmpfs cgroup_root /sys/fs/cgroup
while read -r dir opts; do mkdir -p "$dir" && mount -t cgroup -o "$opts" cgroup "$dir"; done <"$TMP/cgroups"
ulimits=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096)
tar -C "$TMP/rootfs" -c . | timeout 60 podman import -q - localhost/pmi-busybox >/dev/null || bad "podman import of the busybox image"

# An HTTP GET from the world (bash's /dev/tcp: busybox-static's wget crashes here): the response, or the error.
fetch() {
  ip netns exec "$W" timeout 3 bash -c 'exec 3<>"/dev/tcp/198.18.0.2/$1" && printf "GET / HTTP/1.0\r\n\r\n" >&3 && cat <&3' _ "$1" 2>&1 | tr -d '\r'
}

for v in "$@"; do
  cat >"$TMP/net.d/pmi.conflist" <<EOF
{"cniVersion": "$v", "name": "pmi", "plugins": [{"type": "portmap-isolator",
  "resources": "ports:[31000-32000];ephemeral_ports:[30001-30999]", "ephemeral_ports_per_container": 16,
  "work_dir": "$TMP/work", "capabilities": {"portMappings": true}}]}
EOF
  if ! id=$(timeout 60 podman run -d --name "pmi-$v" --network pmi -p 31005:31005 "${ulimits[@]}" localhost/pmi-busybox \
    sh -c "mkdir -p /www && echo pmi-$v >/www/index.html && httpd -p 31005 -h /www && httpd -p 31006 -h /www && exec sleep 120" 2>"$TMP/run.err"); then
    bad "$v: podman run: $(tail -n 3 "$TMP/run.err" | tr '\n' ' ')"
    timeout 30 podman rm -f -t 0 "pmi-$v" >/dev/null 2>&1
    continue
  fi
  ok "$v: podman run through the plugin"
  sandbox=$(podman inspect --format '{{.NetworkSettings.SandboxKey}}' "$id")
  cp "$TMP/work/containers/$id.json" "$TMP/rec.json" 2>/dev/null && ok "$v: a record of container ${id:0:12} in the work_dir" || bad "$v: no record of ${id:0:12}"
  got=
  for _ in $(seq 1 20); do
    got=$(fetch 31005 | tail -n 1)
    [ "$got" = "pmi-$v" ] && break
    sleep 0.25
  done
  [ "$got" = "pmi-$v" ] && ok "$v: TCP from the world reaches the container on mapped port 31005" || bad "$v: mapped port 31005: got '$got'"
  # The container listens there too: a managed port nobody holds is dropped on the host's eth0
  # (data path v2; Mesos left it to the host's stack, which refused): no answer at all.
  got=$(fetch 31006)
  case $got in *pmi-*) bad "$v: unmapped port 31006 reached the container" ;; '') ok "$v: unmapped port 31006 of the range does not reach it (dropped, no answer)" ;; *) bad "$v: port 31006: '$got'" ;; esac
  timeout 30 podman stop -t 1 "$id" >/dev/null 2>&1 || bad "$v: podman stop"
  [ ! -e "$TMP/work/containers/$id.json" ] && ok "$v: DEL removed its record" || bad "$v: its record is still there"
  [ ! -e "$TMP/work/cni/$id.json" ] && ok "$v: DEL removed its sandbox snapshot" || bad "$v: its sandbox snapshot is still there"
  [ -n "$sandbox" ] && [ ! -e "$sandbox" ] && ok "$v: podman's pinned netns $sandbox is gone" || bad "$v: pinned netns '$sandbox' is still there"
  traces=$(node "$REPO/test/cni/podman/traces.mjs" "$H" "$TMP/rec.json" 2>&1)
  case $traces in '{"veth":false,"filters":0,'*) ok "$v: no veth, no port filters left on the host ($traces)" ;; *) bad "$v: left on the host: $traces" ;; esac
  # Containers' veths (pmi<N>); the host's own pairs (pmi-echo*, pmi-shape*) are its setup, removed by cleanup.
  left=$(ip -o link show | grep -cE ': pmi[0-9]+[@:]')
  [ "$left" = 0 ] && ok "$v: no pmi<N> veth on the host" || bad "$v: $left pmi<N> veths on the host"
  timeout 30 podman rm -f -t 0 "$id" >/dev/null 2>&1
done
timeout 30 podman rm -a -f -t 0 >/dev/null 2>&1
INNER

timeout 240 ip netns exec "$H" bash "$TMP/inner.sh" "$TMP" "$REPO" "$H" "$W" "${VERSIONS[@]}" >"$TMP/out" 2>&1
status=$?
cat "$TMP/out"
passed=$(grep -c '^ok ' "$TMP/out")
failed=$(grep -c '^FAIL ' "$TMP/out")
if [ "$status" -ne 0 ]; then
  echo "podman: the lab shell ended with status $status"
  failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
