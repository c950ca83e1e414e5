# Sourced by the bench/*.sh CLI measurements: a lab of their own (pmi-lab-<pid>-host with eth0
# 198.18.0.2/24 and a world peer 198.18.0.1; names start with the script's pid, so test runs'
# sweeps of stale labs leave it alone), a fresh work_dir under /dev/shm, and a teardown on exit
# that kills the PIDS still running, cleans up through the CLI and removes everything.
# Needs CLI (the checkout's dist/app/main.js) set before sourcing.
HOSTNS=pmi-lab-$$-host
WORLDNS=pmi-lab-$$-world
WORK=$(mktemp -d /dev/shm/pmi-meas-work.XXXXXX)
OUT=$(mktemp -d /tmp/pmi-meas-out.XXXXXX)
FLAGS=(--netns=$HOSTNS --work_dir="$WORK")
PIDS=()

teardown() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  if ip netns list | grep -qw "$HOSTNS"; then
    node "$CLI" cleanup "${FLAGS[@]}" >/dev/null 2>"$OUT/final-cleanup.err" || echo "final cleanup: exit $?" >&2
  fi
  ip netns del $HOSTNS 2>/dev/null
  ip netns del $WORLDNS 2>/dev/null
  rm -rf "$WORK" "$OUT"
}
trap teardown EXIT
trap 'exit 130' INT TERM

ip netns add $HOSTNS
ip netns add $WORLDNS
ip -n $HOSTNS link set lo up
ip -n $HOSTNS link add eth0 type veth peer name eth0 netns $WORLDNS
ip -n $HOSTNS addr add 198.18.0.2/24 dev eth0
ip -n $WORLDNS addr add 198.18.0.1/24 dev eth0
ip -n $HOSTNS link set eth0 up
ip -n $WORLDNS link set eth0 up
ip -n $HOSTNS route add default via 198.18.0.1
ip netns exec $HOSTNS sysctl -qw net.ipv4.ip_local_port_range="61000 65000"

now() { date +%s.%N; }
