#!/usr/bin/env bash
# Builds the kernel the oracle boots, from Debian's own linux-source-6.12 package (stock bookworm-security suite),
# with kernel.config merged over x86_64_defconfig. The result is cached outside the repo, keyed by sha256 of
# (config fragment + source package version), so later runs take seconds:
#   $IOMMUTRAIL_CACHE/kernel/<key>/{bzImage,config,headers/include,kernelrelease,source-version,.complete}
# (the unpacked source, shared by every config: $IOMMUTRAIL_CACHE/kernel/source/<pkg>-<version>)
# Prints that folder on stdout (progress goes to stderr).
#   IOMMUTRAIL_CACHE  cache root (default: ~/.cache/iommutrail)
#   KERNEL_SOURCE_PKG source package (default: linux-source-6.12; linux-source-6.1 builds the older release)
#   KERNEL_JOBS       make -j (default: 3)
#   KERNEL_CACHED_ONLY=1  print the cached folder, or exit 69 when the image is not built (never builds, never installs)
# Installs what it needs from Debian with --no-install-recommends; never changes the machine's apt sources.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
pkg="${KERNEL_SOURCE_PKG:-linux-source-6.12}"
jobs="${KERNEL_JOBS:-3}"
cache_root="${IOMMUTRAIL_CACHE:-$HOME/.cache/iommutrail}"
needed=(qemu-system-x86 busybox-static bc bison flex libelf-dev cpio rsync xz-utils gcc make)

log() { echo "build-kernel: $*" >&2; }

if [ "${KERNEL_CACHED_ONLY:-}" = 1 ]; then
  command -v apt-cache >/dev/null 2>&1 || { log "no apt-cache: cannot name the source version"; exit 69; }
  version="$(apt-cache policy "$pkg" 2>/dev/null | sed -n 's/^ *Candidate: //p')"
  key="$( { cat "$here/kernel.config"; echo "$pkg=$version"; } | sha256sum | cut -c1-16)"
  out="$cache_root/kernel/$key"
  [ -f "$out/.complete" ] || { log "no kernel image cached for $pkg=$version (key $key): run $0"; exit 69; }
  echo "$out"
  exit 0
fi

missing=()
for p in "${needed[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-cache policy "$pkg" 2>/dev/null | grep -q 'Candidate: [0-9]'; then apt-get update -qq; fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

version="$(apt-cache policy "$pkg" | sed -n 's/^ *Candidate: //p')"
if [ -z "$version" ] || [ "$version" = "(none)" ]; then
  apt-get update -qq
  version="$(apt-cache policy "$pkg" | sed -n 's/^ *Candidate: //p')"
fi
[ -n "$version" ] && [ "$version" != "(none)" ] || { log "$pkg has no candidate in the machine's apt sources"; exit 69; }
key="$( { cat "$here/kernel.config"; echo "$pkg=$version"; } | sha256sum | cut -c1-16)"
out="$cache_root/kernel/$key"
if [ -f "$out/.complete" ] && [ -f "$out/bzImage" ]; then
  echo "$out"
  exit 0
fi

start=$(date +%s)
mkdir -p "$out"
# the unpacked source is shared by every config of one source version; each config builds out of tree (O=)
src="$cache_root/kernel/source/$pkg-$version"
if [ ! -f "$src/.unpacked" ]; then
  rm -rf "$src" "$src.deb"
  mkdir -p "$src.deb" "$src"
  log "downloading $pkg=$version"
  (cd "$src.deb" && apt-get download -q "$pkg=$version" >&2)
  dpkg -x "$src.deb"/*.deb "$src.deb/x"
  tarball="$(ls "$src.deb"/x/usr/src/linux-source-*.tar.xz | head -1)"
  log "unpacking $(basename "$tarball")"
  tar -xJf "$tarball" -C "$src" --strip-components=1
  rm -rf "$src.deb"
  touch "$src/.unpacked"
fi

build="$out/build"
mkdir -p "$build"
cd "$src"
log "configuring: x86_64_defconfig + kernel.config"
make -s O="$build" x86_64_defconfig >&2
(cd "$build" && "$src/scripts/kconfig/merge_config.sh" -m -O "$build" .config "$here/kernel.config" >&2)
make -s O="$build" olddefconfig >&2
# every =y line of the fragment must have survived olddefconfig (a dependency missing would silently drop it), except
# the options this release predates (absent_in_release); each of those must really be undefined in its Kconfig files,
# so the list cannot hide an option that exists but was dropped.
absent_in_release() {
  case "$1" in
    # iommufd came in 6.2 (drivers/iommu/iommufd), VFIO_GROUP/VFIO_CONTAINER as options in 6.2 and 6.6,
    # the VFIO device cdev (/dev/vfio/devices/vfioN) in 6.6
    linux-source-6.1) echo CONFIG_IOMMUFD CONFIG_IOMMUFD_TEST CONFIG_VFIO_GROUP CONFIG_VFIO_CONTAINER CONFIG_VFIO_DEVICE_CDEV ;;
  esac
}
absent=" $(absent_in_release "$pkg") "
bad=0
while IFS= read -r line; do
  case "$line" in CONFIG_*=y)
    opt="${line%=y}"
    if [ "${absent#* $opt }" != "$absent" ]; then
      if grep -rqE --include='Kconfig*' "^(menu)?config ${opt#CONFIG_}$" "$src"; then
        log "config: $opt is listed absent from $pkg but its Kconfig defines it"; bad=1
      else
        log "config: $opt does not exist in $pkg (expected)"
      fi
      continue
    fi
    grep -qx "$line" "$build/.config" || { log "config: $line did not stick"; bad=1; } ;;
  esac
done < "$here/kernel.config"
[ "$bad" = 0 ] || exit 1

log "make -j$jobs bzImage (cold build: ~17 min on 2 cores)"
make -j"$jobs" O="$build" bzImage >&2
rm -rf "$out/headers"
make -s O="$build" headers_install INSTALL_HDR_PATH="$out/headers" >&2
make -s O="$build" kernelrelease > "$out/kernelrelease"
cp "$build/arch/x86/boot/bzImage" "$out/bzImage"
cp "$build/.config" "$out/config"
echo "$pkg=$version" > "$out/source-version"
echo "$(( $(date +%s) - start ))" > "$out/build-seconds"
touch "$out/.complete"
log "built $(cat "$out/kernelrelease") in $(cat "$out/build-seconds")s"
echo "$out"
