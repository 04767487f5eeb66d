#!/usr/bin/env bash
# `make demo-python`: the Python sample built with `creator -build-image`, so detect and build run inside
# the bookworm + python3 build image (not on the host), into an OCI layout on the bookworm + python3 run
# image; then the app image is unpacked with umoci and its default process run through the launcher in a
# chroot. The first run builds both images (debootstrap + apt-get python3: needs the Debian mirror, ~1 min);
# later runs reuse them, the unpacked build image, the cache and the previous image's layers.
set -euo pipefail

APP_IMAGE=localhost/samples/python:latest
RUN_IMAGE=localhost/samples/python-run:latest
export CNB_PLATFORM_API=${CNB_PLATFORM_API:-0.14}
export CNB_USER_ID=1000 CNB_GROUP_ID=1000
export CNB_EXPERIMENTAL_MODE=warn
. "$(dirname "$0")/demo-lib.sh"
[ "$(id -u)" = 0 ] || { echo "run as root (debootstrap, namespaces, chroot)" >&2; exit 1; }
demo_init demo-python
export CNB_BUILD_IMAGE_CACHE=$OUT/build-image-cache
BIN=$ROOT/target/x86_64-unknown-linux-gnu/${DEMO_PROFILE:-release}
[ -n "${CNB_MKIMAGE:-}" ] || [ ! -x "$BIN/cnb-mkimage" ] || export CNB_MKIMAGE=$BIN/cnb-mkimage

if [ ! -f "$OUT/images/run/index.json" ] || [ ! -f "$OUT/images/build/index.json" ]; then
  say "Building the bookworm + python3 build and run images (first run only)"
  sh "$ROOT/samples/base-images/python/build.sh" "$OUT/images" "$OUT/rootfs-cache"
fi
say "Preparing the platform directories under $OUT"
rm -rf "$OUT/cnb" "$OUT/layers" "$OUT/workspace" "$OUT/platform" "$OUT/bundle"
mkdir -p "$OUT/cnb/buildpacks/samples_python" "$OUT/layers" "$OUT/platform" "$OUT/cache" "$OUT/oci/localhost/samples/python-run"
cp -R "$ROOT/samples/buildpacks/python" "$OUT/cnb/buildpacks/samples_python/0.1.0"
printf '[[order]]\n[[order.group]]\nid = "samples/python"\nversion = "0.1.0"\n' > "$OUT/cnb/order.toml"
printf '[[images]]\nimage = "%s"\n' "$RUN_IMAGE" > "$OUT/cnb/run.toml"
rm -rf "$OUT/oci/localhost/samples/python-run/latest"
cp -a "$OUT/images/run" "$OUT/oci/localhost/samples/python-run/latest"
cp -R "$ROOT/samples/apps/python" "$OUT/workspace"
chmod -R a+rX "$OUT/cnb" "$OUT/platform" "$OUT/images"
chown -R "$CNB_USER_ID:$CNB_GROUP_ID" "$OUT/workspace" "$OUT/layers" "$OUT/cache" "$OUT/oci"

say "creator -build-image → OCI layout $APP_IMAGE"
"$LC/creator" \
  -app="$OUT/workspace" -layers="$OUT/layers" -platform="$OUT/platform" \
  -buildpacks="$OUT/cnb/buildpacks" -order="$OUT/cnb/order.toml" -run="$OUT/cnb/run.toml" \
  -cache-dir="$OUT/cache" -launcher="$LC/launcher" \
  -build-image="$OUT/images/build" \
  -layout -layout-dir="$OUT/oci" -previous-image="$APP_IMAGE" \
  "$APP_IMAGE" 2>&1 | tee "$OUT/creator.log"

say "Unpacking the image with umoci and running its default process as uid 1000 in a chroot"
umoci unpack --image "$OUT/oci/localhost/samples/python/latest:latest" "$OUT/bundle" >/dev/null
python3 - "$OUT/bundle" <<'PY'
import json, os, sys
bundle = sys.argv[1]
proc = json.load(open(os.path.join(bundle, "config.json")))["process"]
env = dict(e.split("=", 1) for e in proc.get("env", []))
print("$", " ".join(proc["args"]), flush=True)
pid = os.fork()
if pid == 0:
    os.chroot(os.path.join(bundle, "rootfs"))
    os.chdir(proc.get("cwd") or "/")
    os.setgroups([])
    os.setgid(proc["user"].get("gid", 1000))
    os.setuid(proc["user"].get("uid", 1000))
    os.execve(proc["args"][0], proc["args"], env)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
PY
demo_summary "$APP_IMAGE" "$OUT/oci/localhost/samples/python/latest" "$OUT/creator.log" "cd $ROOT && make demo-python"
