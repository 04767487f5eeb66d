#!/bin/sh
# Builds a Debian bookworm minbase OCI image layout at $1 (tag "latest") with build user cnb
# 1000:1000. $2 (optional) caches the debootstrapped root filesystem between runs.
set -eu
LAYOUT=${1:?usage: build.sh LAYOUT [ROOTFS_CACHE]}
CACHE=${2:-}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
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
umoci init --layout "$LAYOUT"
umoci new --image "$LAYOUT:latest"
umoci insert --image "$LAYOUT:latest" "$R" /
umoci config --image "$LAYOUT:latest" \
  --config.user 1000:1000 \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.env CNB_USER_ID=1000 --config.env CNB_GROUP_ID=1000 \
  --config.label io.buildpacks.base.distro.name=debian \
  --config.label io.buildpacks.base.distro.version=12 \
  --config.label io.buildpacks.stack.id=io.buildpacks.stacks.bookworm \
  --os linux --architecture amd64
umoci gc --layout "$LAYOUT"
