# Sourced by samples/demo.sh and samples/demo-python.sh (bash). Makes the demos work from any checkout
# location and umask, and prints what a newcomer needs at the end.
#   demo_init NAME       sets OUT (the demo's volumes) and LC (the lifecycle dir, reference layout)
#   demo_summary IMAGE LAYOUT LOG   prints what was built, where, the phase timings and how to re-run

# The demo's own files get ordinary modes whatever the caller's umask (077 would hide them from uid 1000).
umask 022

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# The first directory on the way to $1 that uid:gid $2:$3 cannot enter (the kernel's answer, via setpriv).
first_blocking_dir() {
  local path=$1 uid=$2 gid=$3 cur="" part
  local IFS=/
  for part in $path; do
    [ -n "$part" ] || continue
    cur="$cur/$part"
    [ -d "$cur" ] || return 1
    if ! setpriv --reuid="$uid" --regid="$gid" --clear-groups -- test -x "$cur" 2>/dev/null; then
      printf '%s\n' "$cur"
      return 0
    fi
  done
  return 1
}

demo_init() {
  local name=$1 blocker
  ROOT=$(cd "$(dirname "${BASH_SOURCE[1]}")/.." && pwd)
  OUT=${DEMO_OUT:-$ROOT/out/$name}
  if [ -z "${DEMO_OUT:-}" ] && blocker=$(first_blocking_dir "$ROOT" "$CNB_USER_ID" "$CNB_GROUP_ID"); then
    # The checkout sits under a directory the build user cannot enter (a 0700 /root, a mktemp -d): the
    # buildpacks, the app and the layers would be out of its reach. Use a reachable directory instead.
    OUT=/tmp/cnb-lifecycle-$name-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)
    echo "note: uid $CNB_USER_ID cannot enter $blocker (it blocks $ROOT), so the demo's volumes go to $OUT"
  fi
  mkdir -p "$OUT"
  chmod 0755 "$OUT"
  if blocker=$(first_blocking_dir "$OUT" "$CNB_USER_ID" "$CNB_GROUP_ID"); then
    echo "the build user $CNB_USER_ID:$CNB_GROUP_ID cannot enter $blocker, which holds $OUT: set DEMO_OUT to a directory it can reach" >&2
    exit 1
  fi
  # The lifecycle in the reference's layout (lifecycle + phase symlinks + launcher + SBOMs), inside OUT so
  # that the build user reaches the launcher the exporter copies.
  if [ -n "${CNB_LIFECYCLE_BIN_DIR:-}" ]; then
    LC=$CNB_LIFECYCLE_BIN_DIR
  else
    local bin=$ROOT/target/x86_64-unknown-linux-gnu/${DEMO_PROFILE:-release}
    [ -x "$bin/lifecycle" ] || { echo "missing $bin/lifecycle: run 'make build' first" >&2; exit 1; }
    LC=$OUT/lifecycle
    sh "$ROOT/tools/install-lifecycle.sh" "$bin" "$LC"
    # The run image's writer from the same build, when it has one.
    [ -n "${CNB_MKIMAGE:-}" ] || [ ! -x "$bin/cnb-mkimage" ] || export CNB_MKIMAGE=$bin/cnb-mkimage
  fi
  for b in creator launcher; do
    [ -x "$LC/$b" ] || { echo "missing $LC/$b" >&2; exit 1; }
  done
}

# demo_summary IMAGE LAYOUT CREATOR_LOG RERUN_COMMAND
demo_summary() {
  local image=$1 layout=$2 log=$3 rerun=$4 digest timing
  digest=$(sed -n 's/^ *digest *= *"\(.*\)"/\1/p' "$OUT/layers/report.toml" | head -n 1)
  timing=$(sed -n 's/^Timing: //p' "$log" | tail -n 1)
  say "Done"
  echo "built:     $image ($digest)"
  echo "image:     OCI layout $layout (skopeo inspect oci:$layout:latest)"
  echo "phases:    ${timing:-see the creator output above}"
  echo "run again: $rerun"
}
