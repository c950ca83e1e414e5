#!/bin/bash
# Runs INSIDE the stock-kernel guest (started by run.sh through qlab.sh), in the repository, as
# root of the guest's own kernel. Everything the tests build lives in lab namespaces; nothing here
# touches the guest's root network namespace. Results go to $QLAB_IO (the writable share).
set -uo pipefail
: "${QLAB_IO:?}"
uname -r > "$QLAB_IO/kernel"
echo "stock-kernel guest: kernel $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo) MiB, node $(node -v)"
# tsx takes 8-30 s to start under emulation: inside the guest only, node_modules/tsx is the stub
# that runs the bundles run.sh built on the host (the host's tree is not touched: this is the
# guest's own mount namespace, over a tmpfs overlay).
mount --bind test/stock-kernel/tsx-stub node_modules/tsx || { echo "stock-kernel guest: cannot bind the tsx stub" >&2; exit 3; }
export PMI_STOCK_TSX_MAP="$QLAB_IO/tsx-map.json"
export PMI_STOCK_KERNEL=1
# vitest sees a serial console as a terminal and redraws; a pipe gives a plain log.
node_modules/.bin/vitest run --config test/stock-kernel/vitest.config.ts --maxWorkers="${PMI_STOCK_WORKERS:-2}" \
  --reporter=default --reporter=json --outputFile.json="$QLAB_IO/vitest.json" "$@" 2>&1 | cat
exit "${PIPESTATUS[0]}"
