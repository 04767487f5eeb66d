#!/bin/sh
# Writes DIR/{lifecycle,launcher}.sbom.{cdx,spdx,syft}.json from `cargo metadata` (tools/sbom.py).
#   sboms.sh DIR [TARGET]
set -eu
DIR=${1:?usage: sboms.sh DIR [TARGET]}
TARGET=${2:-x86_64-unknown-linux-gnu}
HERE=$(cd "$(dirname "$0")" && pwd)
CARGO=${CARGO:-cargo}
mkdir -p "$DIR"
META="$DIR/.cargo-metadata.json"
(cd "$HERE/.." && "$CARGO" metadata --format-version 1 --locked --filter-platform "$TARGET") > "$META"
for c in lifecycle launcher; do
  python3 "$HERE/sbom.py" --metadata "$META" --package cnb-lifecycle --component "$c" --out-dir "$DIR"
done
rm -f "$META"
