#!/bin/sh
# Builds a busybox-static OCI image layout at $1 (tag "latest") with build user cnb 1000:1000, written by
# the project's own image writer (cnb-mkimage). Needs root (chroot, chown) and busybox-static.
set -eu
LAYOUT=${1:?usage: build.sh LAYOUT}
BUSYBOX=${BUSYBOX:-/bin/busybox}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../mkimage.sh"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
R="$WORK/rootfs"
mkdir -p "$R/bin" "$R/etc" "$R/tmp" "$R/root" "$R/home/cnb" "$R/proc" "$R/dev" "$R/usr/bin" "$R/usr/sbin" "$R/sbin"
cp "$BUSYBOX" "$R/bin/busybox"
chroot "$R" /bin/busybox --install -s
printf 'root:x:0:0:root:/root:/bin/sh\ncnb:x:1000:1000:cnb:/home/cnb:/bin/sh\n' > "$R/etc/passwd"
printf 'root:x:0:\ncnb:x:1000:\n' > "$R/etc/group"
printf '127.0.0.1 localhost\n::1 localhost\n' > "$R/etc/hosts"
chown 1000:1000 "$R/home/cnb"
chmod 755 "$R" "$R/bin" "$R/etc" "$R/home" "$R/home/cnb" "$R/usr" "$R/usr/bin" "$R/usr/sbin" "$R/sbin"
chmod 700 "$R/root"
chmod 1777 "$R/tmp"
VERSION=$("$BUSYBOX" 2>&1 | sed -n '1s/^BusyBox v\([0-9.]*\).*/\1/p')
rm -rf "$LAYOUT"
mkimage --layout "$LAYOUT" --tag latest --rootfs "$R" \
  --build-user 1000:1000 \
  --env PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  --base "io.buildpacks.stacks.busybox,busybox,${VERSION:-unknown},busybox-static sample build/run image,https://busybox.net" \
  --cmd '["/bin/sh"]' >/dev/null
