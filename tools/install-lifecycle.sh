#!/bin/sh
# The reference's /cnb/lifecycle layout from a build directory (`make install`, `make image`, `make package`):
#   install-lifecycle.sh BIN_DIR DEST
# DEST/lifecycle (the multi-call binary), DEST/<phase> -> lifecycle for every phase, DEST/launcher (0755),
# DEST/lifecycle.toml (0644, from `lifecycle lifecycle-descriptor`) and the SBOMs
# DEST/{lifecycle,launcher}.sbom.{cdx,spdx,syft}.json (0644) that `make build` wrote next to the binaries
# (generated here with tools/sbom.py when they are missing).
set -eu
BIN=${1:?usage: install-lifecycle.sh BIN_DIR DEST}
DEST=${2:?usage: install-lifecycle.sh BIN_DIR DEST}
HERE=$(cd "$(dirname "$0")" && pwd)
PHASES="analyzer detector restorer extender builder exporter rebaser creator"
for b in lifecycle launcher; do
  [ -x "$BIN/$b" ] || { echo "install-lifecycle.sh: missing $BIN/$b (build the binaries first: make build)" >&2; exit 1; }
done
mkdir -p "$DEST"
chmod 0755 "$DEST"
for b in lifecycle launcher; do
  cp -L "$BIN/$b" "$DEST/.$b.tmp"
  chmod 0755 "$DEST/.$b.tmp"
  mv -f "$DEST/.$b.tmp" "$DEST/$b"
done
for p in $PHASES; do
  ln -sfn lifecycle "$DEST/$p"
done
# $LIFECYCLE_RUNNER runs a foreign-architecture build (e.g. qemu-aarch64-static for ARCH=arm64).
${LIFECYCLE_RUNNER:-} "$DEST/lifecycle" lifecycle-descriptor > "$DEST/.lifecycle.toml.tmp"
chmod 0644 "$DEST/.lifecycle.toml.tmp"
mv -f "$DEST/.lifecycle.toml.tmp" "$DEST/lifecycle.toml"
missing=
for c in lifecycle launcher; do
  for ext in cdx spdx syft; do
    f=$c.sbom.$ext.json
    if [ -f "$BIN/$f" ]; then cp "$BIN/$f" "$DEST/$f"; chmod 0644 "$DEST/$f"; else missing=1; fi
  done
done
if [ -n "$missing" ]; then
  sh "$HERE/sboms.sh" "$DEST"
fi
