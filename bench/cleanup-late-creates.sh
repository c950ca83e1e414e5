#!/usr/bin/env bash
# `cleanup` of COUNT containers, with LATE `create lateI` CLI processes started 2 s into it.
# Usage: sudo bench/cleanup-late-creates.sh CHECKOUT [COUNT=1000] [LATE=20]
#   CHECKOUT: a checkout whose dist/ is built. Same lab and safety as bench/parallel-cli.sh
#   (pmi-lab-<pid>-host / pmi-lab-<pid>-world, a fresh work_dir under /dev/shm, removed at the end).
# Flags: resources ports:[50000-51000];ephemeral_ports:[30000-47999], 16 ephemeral ports per
# container (1125 blocks). The COUNT containers are made in one node process (Isolator.create,
# sequentially). Prints the create time, the cleanup's wall time, and each late create's exit
# status, duration, and whether it finished before the cleanup did.
set -u
CHECKOUT=$(cd "${1:?usage: $0 CHECKOUT [COUNT] [LATE]}" && pwd)
COUNT=${2:-1000}
LATE=${3:-20}
CLI="$CHECKOUT/dist/app/main.js"
[ -f "$CLI" ] || { echo "no $CLI (build the checkout first)" >&2; exit 2; }
. "$(dirname "$0")/cli-lab.sh"
RES='ports:[50000-51000];ephemeral_ports:[30000-47999]'

count() { # containers in the work_dir (list --json into a file: a pipe may not get all of it)
  node "$CLI" list "${FLAGS[@]}" --json >"$OUT/list.json" 2>/dev/null
  node -e 'try{console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).length)}catch{console.log("?")}' "$OUT/list.json"
}
sub() { awk "BEGIN{print $1 - $2}"; }

# Stores the flags in the work_dir for the late CLI creates.
node "$CLI" create warm "${FLAGS[@]}" --resources="$RES" --ephemeral_ports_per_container=16 >/dev/null || { echo "warm create failed" >&2; exit 1; }
node "$CLI" destroy warm "${FLAGS[@]}" >/dev/null || { echo "warm destroy failed" >&2; exit 1; }

t0=$(now)
node --input-type=module -e "
const { Isolator } = await import('$CHECKOUT/dist/isolator/index.js');
const iso = await Isolator.open({ netns: '$HOSTNS', workDir: '$WORK', flags: { resources: '$RES', ephemeral_ports_per_container: 16 } });
for (let i = 1; i <= $COUNT; i++) await iso.create({ id: 'c' + i });
await iso.close?.();
" || { echo "creating $COUNT containers failed" >&2; exit 1; }
t1=$(now)
n=$(count)
printf 'phase=create_many n=%d listed=%d wall_s=%.2f\n' "$COUNT" "$n" "$(sub $t1 $t0)"

tc0=$(now)
node "$CLI" cleanup "${FLAGS[@]}" >"$OUT/cleanup.out" 2>"$OUT/cleanup.err" &
CPID=$!
PIDS+=($CPID)
sleep 2
for ((i = 1; i <= LATE; i++)); do
  bash -c 's=$(date +%s.%N); node "$1" create "late$2" --netns="$3" --work_dir="$4" >/dev/null 2>"$5.err"; rc=$?; echo "$rc $s $(date +%s.%N)" >"$5"' \
    _ "$CLI" "$i" "$HOSTNS" "$WORK" "$OUT/late.$i" &
  PIDS+=($!)
done
wait $CPID; crc=$?
tc1=$(now)
for p in "${PIDS[@]:1}"; do wait "$p"; done
PIDS=()
printf 'phase=cleanup n=%d exit=%d wall_s=%.2f\n' "$COUNT" $crc "$(sub $tc1 $tc0)"
[ $crc -ne 0 ] && head -3 "$OUT/cleanup.err" >&2
ok=0 failed=0 lt=0 before=0 durs=()
for ((i = 1; i <= LATE; i++)); do
  read -r rc s e <"$OUT/late.$i"
  [ "$rc" -eq 0 ] && ok=$((ok + 1)) || failed=$((failed + 1))
  grep -q 'is locked by another' "$OUT/late.$i.err" && lt=$((lt + 1))
  awk "BEGIN{exit !($e < $tc1)}" && before=$((before + 1))
  durs+=("$rc:$(printf %.2f "$(sub $e $s)")")
done
printf 'phase=late_create n=%d ok=%d failed=%d lock_timeouts=%d finished_before_cleanup=%d\n' "$LATE" $ok $failed $lt $before
echo "late_create rc:duration_s = ${durs[*]}"
[ $failed -gt 0 ] && cat "$OUT"/late.*.err | sed 's/late[0-9]\+/lateI/g' | sort | uniq -c | sort -rn | head -5 >&2
n=$(count)
echo "containers_after=$n"
