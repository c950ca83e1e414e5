#!/bin/bash
# The stock-kernel test stage (issue #8): the real-kernel suites and the stock-kernel-only tests,
# run with vitest inside Debian's stock kernel (fq_codel, htb, u32, … as production hosts have
# them) booted under qemu, with this machine's root filesystem and the built tree shared
# read-only. Ends with "N passed, N failed"; exits non-zero on any failure, skip or guest error.
#
# usage: test/stock-kernel/run.sh [VITEST ARGS…]    (as root; `npm run test:stock-kernel`)
# env:   STOCK_KERNEL_BUDGET  seconds for the whole stage (default 570); the guest is killed when
#                             the budget is spent
#        STOCK_KERNEL_OUT     directory to copy the guest's vitest.json and console log to
#        PMI_STOCK_WORKERS    vitest workers in the guest (default 2)
#        QLAB_DIR             cache of the unpacked kernel and initramfs (default /var/tmp/pmi-stock-kernel)
#        QLAB_KERNEL_META     the Debian metapackage naming the kernel (default linux-image-amd64)
# With STOCK_KERNEL_OUT set, the verdict is also written to $STOCK_KERNEL_OUT/stock-kernel-result.json
# ({passed, failed, skipped, problems}), for .ci/run to add to the native suite's counts.
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=test/stock-kernel
T0=$SECONDS
BUDGET=${STOCK_KERNEL_BUDGET:-570}
export QLAB_DIR=${QLAB_DIR:-/var/tmp/pmi-stock-kernel}
phase() { echo "stock-kernel: [$((SECONDS - T0)) s] $*"; }
fail() { echo "stock-kernel: ERROR: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

[ "$(id -u)" = 0 ] || fail "must run as root (the guest's tests build network namespaces)"

# 1. Packages: qemu and the kernel (qlab.sh setup), and the tools the tests exec in the guest (traffic is made by Node and python3)
#    (the guest runs this machine's own binaries from the shared root filesystem).
phase "packages and kernel"
tools=(iproute2 python3 procps util-linux)
missing=()
for p in "${tools[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "stock-kernel: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null 2>&1 || true
  for p in "${missing[@]}"; do
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$p" >/dev/null 2>&1 || fail "cannot install the Debian package '$p'"
  done
fi
bash "$HERE/qlab.sh" setup || fail "the stock-kernel lab could not be set up (see the qlab: line above)"
KERNEL=$(ls "$QLAB_DIR/kroot/lib/modules")

# 2. The built tree, on the host (tsc under emulation would be ~10x slower).
phase "build"
[ -d node_modules ] || npm ci --no-audit --no-fund || fail "npm ci failed"
if [ ! -f build/Release/netlink_shim.node ] || [ shim/netlink_shim.cc -nt build/Release/netlink_shim.node ]; then
  npm run build:shim || fail "the native shim does not build (npm run build:shim)"
fi
if [ ! -f dist/app/main.js ] || [ -n "$(find src -newer dist/app/main.js -print -quit)" ]; then
  npx tsc -p tsconfig.build.json || fail "dist/ does not build (tsc -p tsconfig.build.json)"
fi
mapfile -t FILES < <(node_modules/.bin/vitest list --filesOnly --config "$HERE/vitest.config.ts" 2>/dev/null | sed "s#^$PWD/##" | sort)
[ "${#FILES[@]}" -gt 0 ] || fail "vitest lists no test file for $HERE/vitest.config.ts"
if [ "$#" -gt 0 ]; then FILES=(); export STOCK_KERNEL_FILTERED=1; fi   # a filtered run: no file is required, skips are expected

IO=$(mktemp -d "$QLAB_DIR/io.XXXXXX")
trap 'rm -rf "$IO"' EXIT
node "$HERE/prepare.mjs" "$IO" || fail "bundling the entries spawned with tsx failed ($HERE/prepare.mjs)"

# 3. The guest: boot, run the suites, power off. qemu is killed when the budget is spent.
LEFT=$((BUDGET - (SECONDS - T0)))
[ "$LEFT" -ge 120 ] || fail "only ${LEFT}s of the ${BUDGET}s budget are left to boot the guest"
phase "booting $KERNEL under qemu (TCG), ${LEFT}s left"
args=''
for a in "$@"; do args+=" $(printf '%q' "$a")"; done
set +e
QLAB_IO="$IO" QLAB_TIMEOUT="$LEFT" bash "$HERE/qlab.sh" run "bash $HERE/guest.sh$args" > >(tee "$IO/console.log") 2>&1 &
QLAB=$!
trap 'kill -TERM "$QLAB" 2>/dev/null; wait "$QLAB"; rm -rf "$IO"; echo "0 passed, 1 failed"; exit 130' INT TERM
wait "$QLAB"
rc=$?
set -e
trap 'rm -rf "$IO"' EXIT
trap - INT TERM
sleep 0.2
phase "guest done (exit status $rc)"
case $rc in
  124) echo "stock-kernel: the guest ran out of time (budget ${BUDGET}s)" ;;
  125) echo "stock-kernel: the guest failed before reporting an exit status" ;;
esac

if [ -n "${STOCK_KERNEL_OUT:-}" ]; then
  mkdir -p "$STOCK_KERNEL_OUT"
  cp -f "$IO/console.log" "$STOCK_KERNEL_OUT/stock-kernel-console.log" 2>/dev/null || true
  cp -f "$IO/vitest.json" "$STOCK_KERNEL_OUT/stock-kernel-vitest.json" 2>/dev/null || true
fi
phase "total"
# The verdict ("N passed, N failed") is the last line printed.
status=0
node "$HERE/summary.mjs" "$IO/vitest.json" "$rc" "$KERNEL" "$IO/kernel" "${FILES[@]}" || status=$?
exit "$status"
