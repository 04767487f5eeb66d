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
LIFECYCLE_RUNNER=$QEMU sh "$HERE/install-lifecycle.sh" "$BIN" "$W/lifecycle"
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
# A whole creator run (analyze, detect, restore, build, export) into an OCI layout, on the busybox run
# image recipe, with the sample shell buildpacks.
ROOT=$(cd "$HERE/.." && pwd)
C=$W/creator
mkdir -p "$C/cnb/buildpacks" "$C/layers" "$C/platform" "$C/cache" "$C/oci/localhost/samples/run"
sh "$ROOT/samples/base-images/busybox/build.sh" "$C/oci/localhost/samples/run/latest" >/dev/null
for bp in runtime app-deps; do
  mkdir -p "$C/cnb/buildpacks/samples_$bp"
  cp -R "$ROOT/samples/buildpacks/$bp" "$C/cnb/buildpacks/samples_$bp/0.1.0"
done
cp "$ROOT/samples/builders/shell/order.toml" "$ROOT/samples/builders/shell/run.toml" "$C/cnb/"
cp -R "$ROOT/samples/apps/hello" "$C/workspace"
chmod -R a+rX "$C"
uid=$(id -u); gid=$(id -g)
[ "$uid" = 0 ] && { uid=1000; gid=1000; chown -R 1000:1000 "$C/workspace" "$C/layers" "$C/cache" "$C/oci"; }
CNB_USER_ID=$uid CNB_GROUP_ID=$gid CNB_PLATFORM_API=0.14 CNB_EXPERIMENTAL_MODE=quiet \
  "$QEMU" -0 "$W/lifecycle/creator" "$W/lifecycle/lifecycle" \
  -app="$C/workspace" -layers="$C/layers" -platform="$C/platform" -buildpacks="$C/cnb/buildpacks" \
  -order="$C/cnb/order.toml" -run="$C/cnb/run.toml" -cache-dir="$C/cache" -launcher="$W/lifecycle/launcher" \
  -layout -layout-dir="$C/oci" localhost/samples/hello:latest > "$W/creator.log" 2>&1 ||
  { cat "$W/creator.log"; echo "FAIL: the arm64 creator failed" >&2; exit 1; }
grep '^Timing' "$W/creator.log"
grep -q digest "$C/layers/report.toml" || { echo "FAIL: no report.toml" >&2; exit 1; }
echo "arm64 smoke test passed (qemu: $("$QEMU" --version | head -n 1))"
