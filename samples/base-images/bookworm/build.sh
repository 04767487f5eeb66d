#!/bin/sh
# Builds a Debian bookworm minbase OCI image layout at $1 (tag "latest") with build user cnb 1000:1000,
# written by the project's own image writer (cnb-mkimage). $2 (optional) caches the debootstrapped root
# filesystem between runs. Needs root, debootstrap and the Debian mirror (first run only with $2).
set -eu
LAYOUT=${1:?usage: build.sh LAYOUT [ROOTFS_CACHE]}
CACHE=${2:-}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../mkimage.sh"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [ -n "$CACHE" ] && [ -f "$CACHE.complete" ]; then
  R="$CACHE"
else
  R="${CACHE:-$WORK/rootfs}"
  rm -rf "$R" "$R.complete"
  debootstrap --variant=minbase bookworm "$R" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
    tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
  rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/var/cache/apt/*.bin "$R"/var/lib/apt/lists/*
  : > "$R/etc/resolv.conf"
  chroot "$R" /usr/sbin/groupadd -g 1000 cnb
  chroot "$R" /usr/sbin/useradd -u 1000 -g 1000 -m -s /bin/bash cnb
  [ -z "$CACHE" ] || touch "$CACHE.complete"
fi
rm -rf "$LAYOUT"
mkimage --layout "$LAYOUT" --tag latest --rootfs "$R" \
  --build-user 1000:1000 \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --base "io.buildpacks.stacks.bookworm,debian,12,Debian bookworm minbase sample build/run image,https://www.debian.org" \
  --cmd '["/bin/bash"]' >/dev/null
