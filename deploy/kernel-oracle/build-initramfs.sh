#!/usr/bin/env bash
# Assembles the oracle's initramfs: busybox-static, /init, the guest program (gcc -static against uAPI headers
# with iommufd: those `make headers` installed beside the kernel image, or, for a release without iommufd such
# as 6.1, a newer built kernel's, as a VMM built on a newer system runs on an older kernel) and the scenario files.
# With a collector folder (services/kernelOracle/guestCollector.ts: the collect bundle and better-sqlite3 beside it),
# the collector itself goes in too: this machine's /usr/bin/node and /usr/bin/udevadm with the libraries `ldd` names,
# and /init runs `collect` for the whole boot (its events leave over the third serial port). That image is an
# uncompressed cpio: node is ~100 MB, and gunzip under TCG costs more per boot than reading the larger file.
#   build-initramfs.sh <kernel cache dir> <scenarios dir> <out.cpio[.gz]> [<uAPI include dir>] [<collector dir>]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
kernel="$1" scenarios="$2" out="$3" uapi="${4:-$1/headers/include}" collector="${5:-}"
[ -f "$uapi/linux/iommufd.h" ] || { echo "build-initramfs: no iommufd uAPI headers in $uapi" >&2; exit 69; }
busybox="$(command -v busybox || true)"
[ -n "$busybox" ] && file -L "$busybox" 2>/dev/null | grep -q 'statically linked' || busybox=/bin/busybox
[ -x "$busybox" ] || { echo "build-initramfs: busybox-static is not installed" >&2; exit 69; }

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp,scenarios}
cp "$busybox" "$root/bin/busybox"
for applet in sh mount mkdir cat echo poweroff sleep grep; do ln -s busybox "$root/bin/$applet"; done
gcc -static -O2 -Wall -Wno-format-truncation -I "$uapi" -o "$root/itguest" "$here/guest/itguest.c"
cp "$scenarios"/*.scn "$root/scenarios/"
# a binary and every shared library ldd resolves for it, at the same paths (the loader included)
copy_with_libs() {
  local bin="$1" lib
  mkdir -p "$root$(dirname "$bin")"
  cp -L "$bin" "$root$bin"
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}
if [ -n "$collector" ]; then
  command -v node >/dev/null && command -v udevadm >/dev/null || { echo "build-initramfs: the in-guest collector needs node and udevadm on this machine" >&2; exit 69; }
  copy_with_libs "$(command -v node)"
  copy_with_libs "$(command -v udevadm)"
  [ "$(command -v node)" = /usr/bin/node ] || ln -s "$(command -v node)" "$root/usr/bin/node"
  [ "$(command -v udevadm)" = /usr/bin/udevadm ] || ln -s "$(command -v udevadm)" "$root/usr/bin/udevadm"
  find "$collector" -name '*.node' | while read -r addon; do copy_with_libs "$addon"; done
  mkdir -p "$root/opt/iommutrail"
  cp -r "$collector"/. "$root/opt/iommutrail/"
fi
cat > "$root/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tracefs tracefs /sys/kernel/tracing
echo "itguest: start $(cat /proc/sys/kernel/osrelease)"
# ITCOLLECT=<host> (kernel command line): the collector runs for the whole boot, on a tracefs instance of its own
# (its own ring buffer and trace_pipe: the guest program's capture of the global trace_pipe loses nothing)
cpid=
if [ -n "$ITCOLLECT" ] && [ -x /usr/bin/node ]; then
  inst=/sys/kernel/tracing/instances/iommutrail
  mkdir -p $inst
  echo "collector: start $(cat /proc/uptime)"
  /usr/bin/node /opt/iommutrail/collect.mjs collect --host "$ITCOLLECT" --spool /tmp/spool.sqlite --out /dev/ttyS2 \
    --udev --trace --enable-tracepoints --tracefs $inst 2>/tmp/collector.log &
  cpid=$!
  n=0
  until grep -q collector.ready /tmp/collector.log 2>/dev/null; do
    kill -0 $cpid 2>/dev/null || { echo "collector: died before it was ready"; cat /tmp/collector.log; cpid=; break; }
    n=$((n + 1)); [ $n -lt 1200 ] || { echo "collector: not ready after 120 s"; break; }
    sleep 0.1
  done
  echo "collector: ready $(cat /proc/uptime)"
fi
/itguest /dev/ttyS1
echo "itguest: exit $?"
if [ -n "$cpid" ]; then
  echo "collector: stop $(cat /proc/uptime)"
  kill -TERM $cpid
  wait $cpid
  echo "collector: exit $? $(cat /proc/uptime)"
  cat /tmp/collector.log
fi
poweroff -f
INIT
chmod +x "$root/init"
case "$out" in
  *.gz) (cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$out.tmp" ;;
  *) (cd "$root" && find . | cpio -o -H newc --quiet) > "$out.tmp" ;;
esac
mv "$out.tmp" "$out"
