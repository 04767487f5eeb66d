#!/bin/sh
# Smoke test of the linux/arm64 build under qemu-user-static (no binfmt_misc needed: qemu is called
# directly, and the buildpack's x86-64 /bin/sh runs natively when the detector executes it).
#   arm64-smoke.sh BIN_DIR
set -eu
BIN=${1:?usage: arm64-smoke.sh BIN_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
QEMU=${QEMU:-qemu-aarch64-static}
command -v "$QEMU" >/dev/null || { echo "arm64-smoke: $QEMU not found (apt-get install qemu-user-static)" >&2; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
chmod 0755 "$W"
sh "$HERE/install-lifecycle.sh" "$BIN" "$W/lifecycle" 2>/dev/null || {
  # install-lifecycle.sh runs `lifecycle lifecycle-descriptor` natively: do that step under qemu.
  mkdir -p "$W/lifecycle"
  for b in lifecycle launcher; do cp "$BIN/$b" "$W/lifecycle/$b"; chmod 0755 "$W/lifecycle/$b"; done
  for p in analyzer detector restorer extender builder exporter rebaser creator; do ln -sfn lifecycle "$W/lifecycle/$p"; done
  "$QEMU" "$W/lifecycle/lifecycle" lifecycle-descriptor > "$W/lifecycle/lifecycle.toml"
}
for b in lifecycle launcher; do
  file -L "$W/lifecycle/$b" | grep -q 'ARM aarch64' || { echo "FAIL: $b is not an aarch64 ELF: $(file -L "$W/lifecycle/$b")" >&2; exit 1; }
  if readelf -lW "$W/lifecycle/$b" | grep -q INTERP; then echo "FAIL: $b has a PT_INTERP (not static)" >&2; exit 1; fi
done
export CNB_PLATFORM_API=0.15
v=$("$QEMU" -0 "$W/lifecycle/creator" "$W/lifecycle/lifecycle" -version)
lv=$("$QEMU" "$W/lifecycle/launcher" -version)
echo "arm64 creator -version: $v; launcher -version: $lv"
[ "$v" = "$lv" ] || { echo "FAIL: versions differ" >&2; exit 1; }
# A detector run: one shell buildpack that passes, group.toml written.
R=$W/root
mkdir -p "$R/cnb/buildpacks/sh_ok/0.1/bin" "$R/layers" "$R/workspace" "$R/platform"
printf 'api = "0.12"\n[buildpack]\nid = "sh/ok"\nversion = "0.1"\n' > "$R/cnb/buildpacks/sh_ok/0.1/buildpack.toml"
printf '#!/bin/sh\nexit 0\n' > "$R/cnb/buildpacks/sh_ok/0.1/bin/detect"
printf '#!/bin/sh\nexit 0\n' > "$R/cnb/buildpacks/sh_ok/0.1/bin/build"
chmod 0755 "$R/cnb/buildpacks/sh_ok/0.1/bin/detect" "$R/cnb/buildpacks/sh_ok/0.1/bin/build"
printf '[[order]]\n[[order.group]]\nid = "sh/ok"\nversion = "0.1"\n' > "$R/layers/order.toml"
chmod -R a+rwX "$R"
run_as=""
[ "$(id -u)" = 0 ] && run_as="setpriv --reuid=1000 --regid=1000 --clear-groups --"
$run_as "$QEMU" -0 "$W/lifecycle/detector" "$W/lifecycle/lifecycle" \
  -app="$R/workspace" -layers="$R/layers" -platform="$R/platform" -buildpacks="$R/cnb/buildpacks"
grep -q 'id = "sh/ok"' "$R/layers/group.toml" || { echo "FAIL: no group.toml from the arm64 detector" >&2; exit 1; }
echo "arm64 smoke test passed (qemu: $("$QEMU" --version | head -n 1))"
