# Sourced by the recipes: defines mkimage, which runs the project's own image writer (cnb-mkimage,
# acceptance/src/bin/cnb-mkimage.rs). $CNB_MKIMAGE wins; else the newest debug/release build in target/;
# else it is built with cargo (debug). The sourcing script sets HERE to its own directory.
_mk_root=$(cd "$HERE/../../.." && pwd)
mkimage() {
  if [ -z "${CNB_MKIMAGE:-}" ]; then
    for c in $(ls -t "$_mk_root"/target/x86_64-unknown-linux-gnu/debug/cnb-mkimage \
                     "$_mk_root"/target/x86_64-unknown-linux-gnu/release/cnb-mkimage 2>/dev/null); do
      CNB_MKIMAGE=$c; break
    done
  fi
  if [ -z "${CNB_MKIMAGE:-}" ]; then
    echo "building cnb-mkimage (cargo build -p cnb-acceptance --bin cnb-mkimage)" >&2
    (cd "$_mk_root" && cargo build -q --locked -p cnb-acceptance --bin cnb-mkimage) >&2 || return 1
    CNB_MKIMAGE=$_mk_root/target/x86_64-unknown-linux-gnu/debug/cnb-mkimage
  fi
  "$CNB_MKIMAGE" "$@"
}
