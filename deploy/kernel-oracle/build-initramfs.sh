#!/usr/bin/env bash
# Assembles the oracle's initramfs: busybox-static, /init, the guest program (gcc -static against uAPI headers
# with iommufd: those `make headers` installed beside the kernel image, or, for a release without iommufd such
# as 6.1, a newer built kernel's, as a VMM built on a newer system runs on an older kernel) and the scenario files.
#   build-initramfs.sh <kernel cache dir> <scenarios dir> <out.cpio.gz> [<uAPI include dir>]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
kernel="$1" scenarios="$2" out="$3" uapi="${4:-$1/headers/include}"
[ -f "$uapi/linux/iommufd.h" ] || { echo "build-initramfs: no iommufd uAPI headers in $uapi" >&2; exit 69; }
busybox="$(command -v busybox || true)"
[ -n "$busybox" ] && file -L "$busybox" 2>/dev/null | grep -q 'statically linked' || busybox=/bin/busybox
[ -x "$busybox" ] || { echo "build-initramfs: busybox-static is not installed" >&2; exit 69; }

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp,scenarios}
cp "$busybox" "$root/bin/busybox"
for applet in sh mount mkdir cat echo poweroff sleep; do ln -s busybox "$root/bin/$applet"; done
gcc -static -O2 -Wall -Wno-format-truncation -I "$uapi" -o "$root/itguest" "$here/guest/itguest.c"
cp "$scenarios"/*.scn "$root/scenarios/"
cat > "$root/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tracefs tracefs /sys/kernel/tracing
echo "itguest: start $(cat /proc/sys/kernel/osrelease)"
/itguest /dev/ttyS1
echo "itguest: exit $?"
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$out.tmp"
mv "$out.tmp" "$out"
