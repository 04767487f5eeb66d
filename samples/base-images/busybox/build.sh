#!/bin/sh
# Builds a busybox-static OCI image layout at $1 (tag "latest") with build user cnb 1000:1000.
set -eu
LAYOUT=${1:?usage: build.sh LAYOUT}
BUSYBOX=${BUSYBOX:-/bin/busybox}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
R="$WORK/rootfs"
mkdir -p "$R/bin" "$R/etc" "$R/tmp" "$R/root" "$R/home/cnb" "$R/proc" "$R/dev" "$R/usr/bin" "$R/usr/sbin" "$R/sbin"
cp "$BUSYBOX" "$R/bin/busybox"
chroot "$R" /bin/busybox --install -s
printf 'root:x:0:0:root:/root:/bin/sh\ncnb:x:1000:1000:cnb:/home/cnb:/bin/sh\n' > "$R/etc/passwd"
printf 'root:x:0:\ncnb:x:1000:\n' > "$R/etc/group"
chown 1000:1000 "$R/home/cnb"
chmod 1777 "$R/tmp"
rm -rf "$LAYOUT"
umoci init --layout "$LAYOUT"
umoci new --image "$LAYOUT:latest"
umoci insert --image "$LAYOUT:latest" "$R" /
umoci config --image "$LAYOUT:latest" \
  --config.user 1000:1000 \
  --config.env PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  --config.env CNB_USER_ID=1000 --config.env CNB_GROUP_ID=1000 \
  --config.label io.buildpacks.base.distro.name=busybox \
  --config.label io.buildpacks.stack.id=io.buildpacks.stacks.busybox \
  --os linux --architecture amd64
umoci gc --layout "$LAYOUT"
