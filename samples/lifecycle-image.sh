#!/bin/sh
# `make image`: the lifecycle itself as an OCI image layout, written by the project's own image writer
# (cnb-mkimage). Like the reference's buildpacksio/lifecycle: one layer with the reference's layout
# (tools/install-lifecycle.sh: /cnb/lifecycle/lifecycle, the phases as symlinks to it, the launcher,
# lifecycle.toml and the SBOMs; owned by root, 0755/0644), WorkingDir /layers,
# labels io.buildpacks.lifecycle.version, io.buildpacks.lifecycle.apis and io.buildpacks.builder.metadata.
#   lifecycle-image.sh BIN_DIR LAYOUT [TAG]   (TAG defaults to the lifecycle version)
# $LIFECYCLE_ARCH (amd64, arm64) sets the image's architecture for a cross build; $LIFECYCLE_RUNNER runs
# its binaries (qemu-aarch64-static) where needed.
set -eu
BIN=${1:?usage: lifecycle-image.sh BIN_DIR LAYOUT [TAG]}
LAYOUT=${2:?usage: lifecycle-image.sh BIN_DIR LAYOUT [TAG]}
HERE=$(cd "$(dirname "$0")" && pwd)
[ -n "${CNB_MKIMAGE:-}" ] || [ ! -x "$BIN/cnb-mkimage" ] || CNB_MKIMAGE=$BIN/cnb-mkimage
SAMPLES=$HERE
# mkimage.sh finds the checkout three levels above $HERE, the recipe directory that sources it.
HERE=$SAMPLES/base-images/busybox
. "$SAMPLES/base-images/mkimage.sh"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
R="$WORK/rootfs"
mkdir -p "$R/cnb"
sh "$SAMPLES/../tools/install-lifecycle.sh" "$BIN" "$R/cnb/lifecycle"
chmod 0755 "$R/cnb" "$R/cnb/lifecycle"
VERSION=$(sed -n '/^\[lifecycle\]/,/^\[/s/^[[:space:]]*version *= *"\(.*\)"/\1/p' "$R/cnb/lifecycle/lifecycle.toml")
TAG=${3:-$VERSION}
rm -rf "$LAYOUT"
mkimage --layout "$LAYOUT" --tag "$TAG" --rootfs "$R" --owner 0:0 ${LIFECYCLE_ARCH:+--arch "$LIFECYCLE_ARCH"} \
  --lifecycle-toml "$R/cnb/lifecycle/lifecycle.toml" \
  --label "org.opencontainers.image.title=cnb-lifecycle" \
  --label "org.opencontainers.image.version=$VERSION"
echo "lifecycle image $LAYOUT:$TAG"
