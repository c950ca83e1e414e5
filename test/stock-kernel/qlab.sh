#!/bin/bash
# qlab.sh — run a command inside Debian's stock kernel under qemu (TCG), seeing this machine's /
# through a read-only 9p share with a tmpfs overlay on top. Adapted for the stock-kernel test stage
# from shared/tools/qlab.sh (notes: shared/reference/qemu-kernel-lab.md).
#
# usage: qlab.sh setup          packages, kernel download + unpack, initramfs (cached in $QLAB_DIR)
#        qlab.sh run 'CMD...'   boot, run CMD with bash in the current directory, power off;
#                               exits with CMD's status, 125 if the guest never reported one,
#                               124 on timeout
#
# Differences from the shared copy:
# - fails with the package's name when qemu, a tool or the kernel image cannot be had;
# - the kernel is re-resolved (linux-image-amd64's dependency) and re-unpacked only when it changed;
# - every run has its own io directory (QLAB_IO, or a fresh one), so results are never stale;
# - qemu runs in the background under our own watchdog: on timeout, error or signal it is killed
#   by its PID, and no qemu outlives this script;
# - the guest has no network device at all (-nic none): it cannot reach the host's network.
set -euo pipefail
# The guest's init changes → bump this so cached initrds are rebuilt.
INIT_VERSION=2
W=${QLAB_DIR:-/var/tmp/pmi-stock-kernel}   # not under /tmp, /run or /dev/shm (the guest mounts over those)
MEM=${QLAB_MEM:-2048}; SMP=${QLAB_SMP:-2}; TMO=${QLAB_TIMEOUT:-900}
PACKAGES=(qemu-system-x86 busybox-static kmod cpio)
KPKG_META=${QLAB_KERNEL_META:-linux-image-amd64}   # the metapackage naming the current stock kernel

log() { echo "qlab: $*" >&2; }
die() { echo "qlab: ERROR: $*" >&2; exit 2; }

apt_install() {
  mkdir -p "$W"
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ "${#missing[@]}" -eq 0 ] && return 0
  export DEBIAN_FRONTEND=noninteractive
  log "installing ${missing[*]}"
  if ! apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>"$W/apt.err"; then
    apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null 2>&1 || true
    for p in "${missing[@]}"; do
      apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$p" >/dev/null 2>"$W/apt.err" \
        || die "cannot install the Debian package '$p' (apt-get install $p): $(tail -n 3 "$W/apt.err" | tr '\n' ' ')"
    done
  fi
}

# The versioned kernel image package linux-image-amd64 points at (e.g. linux-image-6.1.0-56-amd64).
kernel_package() {
  { apt-cache depends "$KPKG_META" 2>/dev/null || true; } | awk '/Depends: linux-image-/{print $2; exit}'
}

setup() {
  mkdir -p "$W"
  exec 9>"$W/.setup.lock"; flock -w 600 9 || die "another setup holds $W/.setup.lock"
  apt_install "${PACKAGES[@]}"
  [ -x /usr/bin/qemu-system-x86_64 ] || die "qemu-system-x86_64 is missing after installing qemu-system-x86"
  [ -f /usr/share/qemu/qboot.rom ] || die "/usr/share/qemu/qboot.rom is missing (package qemu-system-data)"
  local pkg; pkg=$(kernel_package)
  if [ -z "$pkg" ]; then
    apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null 2>&1 || true
    pkg=$(kernel_package)
  fi
  [ -n "$pkg" ] || die "cannot resolve the Debian kernel image package: apt-cache depends $KPKG_META names no linux-image-* package"
  if [ -f "$W/initrd.gz" ] && [ "$(cat "$W/kernel.pkg" 2>/dev/null)" = "$pkg" ] && [ -e "$W/vmlinuz" ] && [ "$(cat "$W/init.version" 2>/dev/null)" = "$INIT_VERSION" ]; then
    log "kernel $pkg ready in $W (cached)"; return 0
  fi
  cd "$W"
  rm -rf kroot dl && mkdir kroot dl
  if ! (cd dl && apt-get download "$pkg" >/dev/null 2>"$W/apt.err"); then
    apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null 2>&1 || true
    pkg=$(kernel_package)
    (cd dl && apt-get download "$pkg" >/dev/null 2>"$W/apt.err") \
      || die "cannot download the Debian kernel image package '$pkg' (apt-get download $pkg): $(tail -n 3 "$W/apt.err" | tr '\n' ' ')"
  fi
  dpkg-deb -x dl/"$pkg"_*.deb kroot || die "cannot unpack the kernel image package '$pkg'"
  rm -rf dl
  local K; K=$(ls kroot/lib/modules)
  [ -f "kroot/boot/vmlinuz-$K" ] || die "package '$pkg' holds no kroot/boot/vmlinuz-$K"
  depmod -b kroot "$K"
  ln -sfn "kroot/boot/vmlinuz-$K" vmlinuz
  rm -rf initrd && mkdir -p initrd/{bin,sbin,proc,sys,dev,mods,hostroot,lib/modules,run}
  cp /bin/busybox initrd/bin/; : > initrd/modlist
  local m f b
  for m in virtio_pci 9pnet_virtio 9p overlay; do
    for f in $(modprobe -d kroot -S "$K" --show-depends $m | awk '$1=="insmod"{print $2}'); do
      b=$(basename "$f"); grep -qx "$b" initrd/modlist || { cp "$f" initrd/mods/; echo "$b" >> initrd/modlist; }
    done
  done
  cat > initrd/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin; ln -s /bin/busybox /sbin/modprobe
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
fail() { echo "qlab-guest: $*" > /dev/console; poweroff -f; }
for m in $(cat /modlist); do insmod /mods/$m || fail "insmod $m failed"; done
for a in $(cat /proc/cmdline); do case $a in qlab.kroot=*) KROOT=${a#*=};; qlab.io=*) IO=${a#*=};; esac; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /hostroot || fail "cannot mount the host root"
mkdir -p /run/ov; mount -t tmpfs -o size=1g tmpfs /run/ov; mkdir -p /run/ov/u /run/ov/w /run/ov/root; R=/run/ov/root
mount -t overlay -o lowerdir=/hostroot,upperdir=/run/ov/u,workdir=/run/ov/w overlay $R || fail "cannot mount the overlay"
mount --bind /hostroot$KROOT/lib/modules /lib/modules; echo /sbin/modprobe > /proc/sys/kernel/modprobe   # module autoload
mount -t proc proc $R/proc; mount -t sysfs sys $R/sys; mount -t devtmpfs dev $R/dev
mkdir -p $R/dev/pts $R/dev/shm; mount -t devpts devpts $R/dev/pts; mount -t tmpfs tmpfs $R/dev/shm; mount -t tmpfs tmpfs $R/run
mount -t tmpfs -o size=256m tmpfs $R/tmp
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none qlabio $R$IO || fail "cannot mount the io share"
# A working directory under a path the guest mounts over (CI may clone into /tmp): overlay it
# from the host's view, writable in the guest's memory like the rest.
CWD=$(cat $R$IO/cwd)
case "$CWD" in /tmp/*|/run/*|/dev/shm/*)
  mkdir -p /run/ov/pu /run/ov/pw $R$CWD
  mount -t overlay -o lowerdir=/hostroot$CWD,upperdir=/run/ov/pu,workdir=/run/ov/pw overlay $R$CWD || fail "cannot mount the working directory $CWD";;
esac
echo started > $R$IO/started
chroot $R /bin/bash -c "cd \"\$(cat $IO/cwd)\" && exec /bin/bash $IO/cmd" </dev/console >/dev/console 2>&1
echo $? > $R$IO/rc; sync; poweroff -f
INIT
  chmod +x initrd/init
  (cd initrd && find . | cpio -o -H newc --quiet | gzip -1) > initrd.gz
  echo "$pkg" > kernel.pkg
  echo "$INIT_VERSION" > init.version
  log "kernel $K ($pkg) ready in $W"
}

QPID=''; WATCHDOG=''; IO=''; own_io=''
stop_qemu() {
  local pid
  [ -n "$WATCHDOG" ] && kill "$WATCHDOG" 2>/dev/null || true
  pid=$(cat "$IO/qemu.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(cat /proc/$pid/comm 2>/dev/null)" = qemu-system-x86 ]; then
    kill -TERM "$pid" 2>/dev/null || true; sleep 1; kill -KILL "$pid" 2>/dev/null || true
  fi
  [ -n "$QPID" ] && kill -KILL "$QPID" 2>/dev/null || true
}

run() {
  [ -f "$W/initrd.gz" ] || setup
  own_io=''
  if [ -n "${QLAB_IO:-}" ]; then IO=$QLAB_IO; else IO=$(mktemp -d "$W/io.XXXXXX"); own_io=$IO; fi
  mkdir -p "$IO"; rm -f "$IO/rc" "$IO/started" "$IO/qemu.pid" "$IO/timeout"
  {
    printf 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root CI=%q QLAB_IO=%q\n' "${CI:-}" "$IO"
    printf '%s\n' "$*"
  } > "$IO/cmd"
  pwd > "$IO/cwd"
  trap 'stop_qemu; exit 130' INT TERM
  trap 'stop_qemu; [ -z "$own_io" ] || rm -rf "$own_io"' EXIT
  local t0=$SECONDS
  # qemu dies with this script even if it is SIGKILLed (PR_SET_PDEATHSIG), and is otherwise
  # killed by PID by the watchdog or the traps below.
  local pdeath=()
  command -v setpriv >/dev/null && pdeath=(setpriv --pdeathsig KILL --)
  "${pdeath[@]}" qemu-system-x86_64 -accel tcg -cpu max -smp "$SMP" -m "$MEM" -nographic -nic none -no-reboot -monitor none -serial stdio \
    -bios /usr/share/qemu/qboot.rom -pidfile "$IO/qemu.pid" \
    -kernel "$W/vmlinuz" -initrd "$W/initrd.gz" \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    -virtfs local,path="$IO",mount_tag=qlabio,security_model=none \
    -append "console=ttyS0 panic=-1 quiet loglevel=3 qlab.kroot=$W/kroot qlab.io=$IO" </dev/null > >(tr -d '\r') 2>&1 &
  QPID=$!
  # The watchdog ends with this script, and kills only our qemu (checked by PID and name).
  local self=$$
  (
    end=$((SECONDS + TMO))
    while [ "$SECONDS" -lt "$end" ]; do kill -0 "$self" 2>/dev/null || exit 0; sleep 1; done
    ours() { kill -0 "$QPID" 2>/dev/null && [ "$(cat "/proc/$QPID/comm" 2>/dev/null)" = qemu-system-x86 ]; }
    if ours; then echo "qlab: timeout after ${TMO}s, killing qemu (pid $QPID)" >&2; : > "$IO/timeout"; kill -TERM "$QPID"; sleep 2; ours && kill -KILL "$QPID"; fi
  ) &
  WATCHDOG=$!
  local qrc=0
  wait "$QPID" || qrc=$?
  QPID=''
  kill "$WATCHDOG" 2>/dev/null || true; wait "$WATCHDOG" 2>/dev/null || true; WATCHDOG=''
  sleep 0.2   # let the console pipe drain
  log "guest ran $((SECONDS - t0)) s (qemu exit status $qrc)"
  if [ -f "$IO/timeout" ]; then log "the guest ran out of time (${TMO}s)"; exit 124; fi
  if [ ! -f "$IO/started" ]; then log "the guest never started the command (boot failure)"; exit 125; fi
  if [ ! -f "$IO/rc" ]; then log "the guest reported no exit status"; exit 125; fi
  exit "$(cat "$IO/rc")"
}
"$@"
