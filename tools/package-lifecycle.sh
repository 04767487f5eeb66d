#!/bin/sh
# `make package`: the lifecycle tarball `pack builder create` takes as `[lifecycle] uri`, laid out as the
# reference's release archive (tools/packager): `lifecycle.toml` at the top, then `lifecycle/` with the
# multi-call binary, the phase symlinks, the launcher and the SBOMs; entries sorted, owned by 0:0, mtime
# 1980-01-01T00:00:01Z, gzip without a name or time stamp, so the same build gives the same bytes.
#   package-lifecycle.sh BIN_DIR OUT.tgz
set -eu
BIN=${1:?usage: package-lifecycle.sh BIN_DIR OUT.tgz}
OUT=${2:?usage: package-lifecycle.sh BIN_DIR OUT.tgz}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
sh "$HERE/install-lifecycle.sh" "$BIN" "$WORK/lifecycle"
mv "$WORK/lifecycle/lifecycle.toml" "$WORK/lifecycle.toml"
mkdir -p "$(dirname "$OUT")"
tar -C "$WORK" --sort=name --owner=0 --group=0 --numeric-owner --format=ustar \
  --mtime='1980-01-01 00:00:01Z' -cf - lifecycle.toml lifecycle | gzip -n -"${PACKAGE_GZIP_LEVEL:-9}" > "$OUT.tmp"
mv -f "$OUT.tmp" "$OUT"
echo "lifecycle package $OUT"
