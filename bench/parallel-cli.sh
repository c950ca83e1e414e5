#!/usr/bin/env bash
# N CLI processes at once against one work_dir: N parallel `create pI`, then N parallel `destroy pI`.
# Usage: sudo bench/parallel-cli.sh CHECKOUT [N=250]
#   CHECKOUT: a checkout whose dist/ is built (dist/app/main.js).
# Runs in a fresh lab (network namespaces pmi-lab-<pid>-host / pmi-lab-<pid>-world) and a fresh
# work_dir under /dev/shm; both are removed at the end, also on failure. Prints one line per phase:
#   phase=create n=250 ok=… failed=… lock_timeouts=… wall_s=…
# The lab's names start with this script's pid, so test runs' sweeps of stale labs leave it alone.
set -u
CHECKOUT=$(cd "${1:?usage: $0 CHECKOUT [N]}" && pwd)
N=${2:-250}
CLI="$CHECKOUT/dist/app/main.js"
[ -f "$CLI" ] || { echo "no $CLI (build the checkout first)" >&2; exit 2; }
. "$(dirname "$0")/cli-lab.sh"

# Stores the flags in the work_dir.
node "$CLI" create warm "${FLAGS[@]}" --resources='ports:[31000-32000];ephemeral_ports:[32768-57343]' \
  --ephemeral_ports_per_container=64 >/dev/null || { echo "warm create failed" >&2; exit 1; }
node "$CLI" destroy warm "${FLAGS[@]}" >/dev/null || { echo "warm destroy failed" >&2; exit 1; }

phase() { # phase NAME: N parallel `NAME pI`
  local cmd=$1 i rc ok=0 failed=0 t0 t1
  PIDS=()
  t0=$(now)
  for ((i = 1; i <= N; i++)); do
    node "$CLI" "$cmd" "p$i" "${FLAGS[@]}" >"$OUT/$cmd.$i.out" 2>"$OUT/$cmd.$i.err" &
    PIDS+=($!)
  done
  for ((i = 0; i < N; i++)); do
    wait "${PIDS[$i]}"; rc=$?
    if [ $rc -eq 0 ]; then ok=$((ok + 1)); else failed=$((failed + 1)); echo "$rc" >>"$OUT/$cmd.rcs"; fi
  done
  t1=$(now)
  PIDS=()
  local lt
  lt=$(cat "$OUT/$cmd".*.err | grep -c 'is locked by another')
  printf 'phase=%s n=%d ok=%d failed=%d lock_timeouts=%d wall_s=%.2f\n' "$cmd" "$N" $ok $failed "$lt" "$(awk "BEGIN{print $t1 - $t0}")"
  if [ $failed -gt 0 ]; then
    echo "  $cmd exit codes: $(sort "$OUT/$cmd.rcs" | uniq -c | tr -s ' \n' ' ')" >&2
    echo "  $cmd stderr (first distinct lines):" >&2
    cat "$OUT/$cmd".*.err | sed 's/p[0-9]\+/pI/g; s/waited [0-9]\+/waited …/' | sort | uniq -c | sort -rn | head -5 >&2
  fi
}

phase create
phase destroy

node "$CLI" list "${FLAGS[@]}" --json >"$OUT/list.json" 2>/dev/null
left=$(node -e 'try{console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).length)}catch{console.log("?")}' "$OUT/list.json")
echo "containers_left_after_destroy=$left"
ip netns list | grep -qw "$HOSTNS" || echo "WARNING: lab namespace $HOSTNS disappeared during the run" >&2
