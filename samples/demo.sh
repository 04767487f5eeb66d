#!/usr/bin/env bash
# `make demo`: build the sample app into an OCI image layout with `creator` (no daemon, no registry), then
# run the image: unpack it with umoci and start its default process through the launcher in a chroot.
#
# Run as root on a fresh Debian machine (it installs what it is missing). A second run reuses the cache
# and the previous image's layers.
set -euo pipefail

APP_IMAGE=localhost/samples/hello:latest
RUN_IMAGE=localhost/samples/run:latest
export CNB_PLATFORM_API=${CNB_PLATFORM_API:-0.14}
export CNB_USER_ID=1000 CNB_GROUP_ID=1000
export CNB_EXPERIMENTAL_MODE=warn # OCI layout export is an experimental feature of the platform API (G-15)
. "$(dirname "$0")/demo-lib.sh"

need=()
for tool in umoci:umoci busybox:busybox-static python3:python3; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  say "Installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
if [ "$(id -u)" != 0 ]; then
  echo "make demo runs buildpacks as uid 1000 and the app in a chroot: run it as root" >&2
  exit 1
fi

demo_init demo

say "Preparing the platform directories under $OUT"
mkdir -p "$OUT/oci" "$OUT/cache"
RUN_LAYOUT=$OUT/oci/localhost/samples/run/latest
if [ ! -f "$RUN_LAYOUT/index.json" ]; then
  sh "$ROOT/samples/base-images/busybox/build.sh" "$RUN_LAYOUT"
fi
rm -rf "$OUT/cnb" "$OUT/layers" "$OUT/workspace" "$OUT/platform" "$OUT/bundle"
mkdir -p "$OUT/cnb/buildpacks" "$OUT/layers" "$OUT/platform/env"
for bp in runtime app-deps; do
  ver=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$ROOT/samples/buildpacks/$bp/buildpack.toml" | head -n 1)
  mkdir -p "$OUT/cnb/buildpacks/samples_$bp"
  cp -R "$ROOT/samples/buildpacks/$bp" "$OUT/cnb/buildpacks/samples_$bp/$ver"
done
# The shell sample's builder definitions (samples/builders/shell: order + run image $RUN_IMAGE).
cp "$ROOT/samples/builders/shell/order.toml" "$ROOT/samples/builders/shell/run.toml" "$OUT/cnb/"
cp -R "$ROOT/samples/apps/hello" "$OUT/workspace"
printf '%s' "demo" > "$OUT/platform/env/GREETING_FROM"
chmod -R a+rX "$OUT/cnb" "$OUT/platform"
chown -R "$CNB_USER_ID:$CNB_GROUP_ID" "$OUT/workspace" "$OUT/layers" "$OUT/cache" "$OUT/oci"

say "creator → OCI layout $APP_IMAGE"
"$LC/creator" \
  -app="$OUT/workspace" -layers="$OUT/layers" -platform="$OUT/platform" \
  -buildpacks="$OUT/cnb/buildpacks" -order="$OUT/cnb/order.toml" -run="$OUT/cnb/run.toml" \
  -cache-dir="$OUT/cache" -launcher="$LC/launcher" \
  -layout -layout-dir="$OUT/oci" -previous-image="$APP_IMAGE" \
  "$APP_IMAGE" 2>&1 | tee "$OUT/creator.log"
echo "report.toml:"; sed 's/^/  /' "$OUT/layers/report.toml"

APP_LAYOUT=$OUT/oci/localhost/samples/hello/latest
say "Unpacking the image with umoci"
umoci unpack --image "$APP_LAYOUT:latest" "$OUT/bundle" >/dev/null

say "Running the image's default process (entrypoint via the launcher, in a chroot as uid 1000)"
python3 - "$OUT/bundle" <<'PY'
import json, os, sys
bundle = sys.argv[1]
cfg = json.load(open(os.path.join(bundle, "config.json")))
proc = cfg["process"]
env = dict(e.split("=", 1) for e in proc.get("env", []))
rootfs = os.path.join(bundle, "rootfs")
print("$", " ".join(proc["args"]), flush=True)
pid = os.fork()
if pid == 0:
    os.chroot(rootfs)
    os.chdir(proc.get("cwd") or "/")
    os.setgroups([])
    os.setgid(proc["user"].get("gid", 1000))
    os.setuid(proc["user"].get("uid", 1000))
    os.execve(proc["args"][0], proc["args"], env)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
PY
demo_summary "$APP_IMAGE" "$APP_LAYOUT" "$OUT/creator.log" "cd $ROOT && make demo"
