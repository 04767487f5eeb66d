#!/bin/sh
# Builds the Python sample's bookworm images, written by the project's own image writer (cnb-mkimage):
#   $1/build  OCI layout (tag "latest"): bookworm minbase + python3 + build user cnb 1000:1000
#   $1/run    OCI layout (tag "latest"): the same root filesystem, labelled as the run image
# Each has a second one-file layer, /etc/cnb-sample-image (bookworm-python-build / -run).
# $2 (optional) caches the root filesystems between runs ($2/bookworm: debootstrap minbase, $2/python:
# plus python3). $BOOKWORM_ROOTFS, when set, is a minbase root filesystem with user cnb to start from
# instead of running debootstrap (e.g. target/extend-cache/bookworm/rootfs). Needs root, debootstrap and the Debian mirror (first run only with $2).
set -eu
OUT=${1:?usage: build.sh OUT_DIR [ROOTFS_CACHE_DIR]}
CACHE=${2:-}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../mkimage.sh"
WORK=$(mktemp -d)
trap 'umount "$WORK/py/proc" 2>/dev/null || true; rm -rf "$WORK"' EXIT
C=${CACHE:-$WORK/cache}
mkdir -p "$C"
if [ ! -f "$C/python.complete" ]; then
  if [ ! -f "$C/bookworm.complete" ]; then
    rm -rf "$C/bookworm"
    if [ -n "${BOOKWORM_ROOTFS:-}" ] && [ -d "$BOOKWORM_ROOTFS/etc" ]; then
      cp -a "$BOOKWORM_ROOTFS" "$C/bookworm"
    else
    debootstrap --variant=minbase bookworm "$C/bookworm" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
      tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
    chroot "$C/bookworm" /usr/sbin/groupadd -g 1000 cnb
    chroot "$C/bookworm" /usr/sbin/useradd -u 1000 -g 1000 -m -s /bin/bash cnb
    fi
    touch "$C/bookworm.complete"
  fi
  rm -rf "$WORK/py"
  cp -a "$C/bookworm" "$WORK/py"
  cp /etc/resolv.conf "$WORK/py/etc/resolv.conf"
  mount -t proc proc "$WORK/py/proc"
  chroot "$WORK/py" /bin/sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 >/dev/null' \
    >"$WORK/apt.log" 2>&1 || { tail -20 "$WORK/apt.log" >&2; exit 1; }
  umount "$WORK/py/proc"
  rm -rf "$WORK/py"/var/cache/apt/archives/*.deb "$WORK/py"/var/cache/apt/*.bin "$WORK/py"/var/lib/apt/lists/*
  : > "$WORK/py/etc/resolv.conf"
  rm -rf "$C/python"
  mv "$WORK/py" "$C/python"
  touch "$C/python.complete"
fi
PYVER=$(chroot "$C/python" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
for kind in build run; do
  rm -rf "$OUT/$kind" "$WORK/marker"
  mkdir -p "$OUT" "$WORK/marker/etc"
  # A second, tiny layer naming the image, so builds and apps can tell where they run.
  printf 'bookworm-python-%s\n' "$kind" > "$WORK/marker/etc/cnb-sample-image"
  chmod 755 "$WORK/marker" "$WORK/marker/etc"; chmod 644 "$WORK/marker/etc/cnb-sample-image"
  mkimage --layout "$OUT/$kind" --tag latest --rootfs "$C/python" --rootfs "$WORK/marker" \
    --build-user 1000:1000 \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 \
    --base "io.buildpacks.stacks.bookworm,debian,12,Debian bookworm minbase + python3 $PYVER sample $kind image,https://www.debian.org" \
    --label "io.buildpacks.samples.python.version=$PYVER" \
    --cmd '["/bin/bash"]' >/dev/null 2>"$WORK/mkimage.log" || { cat "$WORK/mkimage.log" >&2; exit 1; }
done
