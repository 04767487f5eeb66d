# cnb-lifecycle — see README.md.
#
#   make build                  release binaries (static) in target/$(TARGET)/release/: the multi-call
#                               `lifecycle`, `launcher`, and their SBOMs (*.sbom.{cdx,spdx,syft}.json)
#   make install DESTDIR=dir    dir/cnb/lifecycle/: lifecycle, <phase> -> lifecycle, launcher,
#                               lifecycle.toml, SBOMs (the reference's layout)
#   make package                out/lifecycle-v<version>+linux.x86-64.tgz for pack's `[lifecycle] uri`
#   make test                   fmt check, clippy -D warnings, unit + acceptance tests (what CI runs)
#   make bench                  phases/examples/bench_*.rs in release mode
#   make demo                   end-to-end demo (issue 8)
#   make image                  the lifecycle itself as an OCI image layout in out/lifecycle-image
#   make clean
#
# The target triple is explicit (.cargo/config.toml sets it and +crt-static) so that binaries are static
# while build scripts and proc-macros stay dynamic.

# ARCH=arm64 cross-compiles for linux/arm64 (Debian's gcc-aarch64-linux-gnu + rustup's aarch64 rust-std).
ARCH    ?= amd64
ifeq ($(ARCH),arm64)
TARGET  ?= aarch64-unknown-linux-gnu
else
TARGET  ?= x86_64-unknown-linux-gnu
endif
CARGO   ?= cargo
DESTDIR ?= out/install
RELEASE := target/$(TARGET)/release
DEBUG   := target/$(TARGET)/debug
# The lifecycle version (workspace version in Cargo.toml).
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

.PHONY: build build-debug toolchain fmt-check lint unit acceptance test bench demo install package clean

# One multi-call binary (`lifecycle`, the phases are symlinks to it) and the separate static launcher.
build:
	$(CARGO) build --locked --release --target $(TARGET) --bin lifecycle --bin launcher
	sh tools/sboms.sh $(RELEASE) $(TARGET)

build-debug:
	$(CARGO) build --locked --bins
	sh tools/sboms.sh $(DEBUG) $(TARGET)

# rustfmt and clippy come from rustup components; add them when missing (fresh machines).
toolchain:
	@if command -v rustup >/dev/null 2>&1; then \
	  for c in rustfmt clippy; do \
	    rustup component list --installed 2>/dev/null | grep -q "^$$c" || rustup component add $$c; \
	  done; \
	fi

fmt-check: toolchain
	$(CARGO) fmt --all -- --check

lint: fmt-check
	$(CARGO) clippy --locked --all-targets -- -D warnings

# The suite runs under umask 022 whatever the caller's: its temp dirs and fixtures must be readable by the
# build user (uid 1000), as a platform's volumes are.
unit:
	umask 022 && $(CARGO) test --locked --workspace --lib --bins

# Acceptance tests run the built debug binaries as separate processes (acceptance/src/harness.rs);
# set CNB_LIFECYCLE_BIN_DIR to run them against another lifecycle build.
acceptance: build-debug
	umask 022 && $(CARGO) test --locked -p cnb-acceptance

test: lint build-debug
	umask 022 && $(CARGO) test --locked --workspace --no-fail-fast

bench:
	@benches=$$(ls phases/examples/bench_*.rs 2>/dev/null | sed 's|.*/||; s|\.rs$$||'); \
	if [ -z "$$benches" ]; then echo "make bench: no benchmarks yet (phases/examples/bench_*.rs)"; exit 0; fi; \
	for b in $$benches; do \
	  echo "==> $$b"; \
	  $(CARGO) run --locked --release -p cnb-lifecycle --example $$b || exit 1; \
	done

# DEMO_PROFILE=debug runs the demo on the test build (what CI does after `make test`).
DEMO_PROFILE ?= release
DEMO_BUILD   := $(if $(filter debug,$(DEMO_PROFILE)),build-debug,build mkimage-release)
# cnb-mkimage (the sample base images' writer) in release, so that the demo compiles one profile only.
.PHONY: mkimage-release
mkimage-release:
	$(CARGO) build --locked --release -p cnb-acceptance --bin cnb-mkimage
demo: $(DEMO_BUILD)
	DEMO_PROFILE=$(DEMO_PROFILE) bash samples/demo.sh

install: build
	sh tools/install-lifecycle.sh $(RELEASE) $(DESTDIR)/cnb/lifecycle

# The reference's archive names: +linux.x86-64 and +linux.arm64.
PKG_ARCH := $(if $(filter arm64,$(ARCH)),arm64,x86-64)
PACKAGE ?= out/lifecycle-v$(VERSION)+linux.$(PKG_ARCH).tgz
package: build
	sh tools/package-lifecycle.sh $(RELEASE) $(PACKAGE)

clean:
	$(CARGO) clean
	rm -rf out

# ---- targets added by other helpers go below, each in its own clearly separated block ----

# ---- launcher (issue 6, launch helper) -------------------------------------------------------------
# launcher-check: the release launcher must be static (no PT_INTERP, no DT_NEEDED) and <= 3 MB stripped.
# bench-launcher: time a trivial process started through the launcher vs directly (added ms, size).
LAUNCHER_BIN       := target/$(TARGET)/release/launcher
LAUNCHER_MAX_BYTES ?= 3145728
.PHONY: launcher-release launcher-check bench-launcher

launcher-release:
	$(CARGO) build --locked --release --bin launcher

launcher-check: launcher-release
	@set -e; bin=$(LAUNCHER_BIN); tmp=$$bin.check-stripped; \
	cp $$bin $$tmp; strip $$tmp; size=$$(stat -c %s $$tmp); rm -f $$tmp; \
	file -L $$bin; \
	if ! ldd $$bin 2>&1 | grep -Eq 'statically linked|not a dynamic executable'; then echo "FAIL: ldd does not report the launcher as static:"; ldd $$bin; exit 1; fi; \
	if readelf -lW $$bin | grep -q 'INTERP'; then echo "FAIL: launcher has a PT_INTERP (needs a dynamic loader)"; exit 1; fi; \
	if readelf -dW $$bin | grep -q '(NEEDED)'; then echo "FAIL: launcher needs shared libraries:"; readelf -dW $$bin | grep '(NEEDED)'; exit 1; fi; \
	echo "launcher: static (no PT_INTERP, no DT_NEEDED); stripped size $$size bytes (limit $(LAUNCHER_MAX_BYTES))"; \
	if [ $$size -gt $(LAUNCHER_MAX_BYTES) ]; then echo "FAIL: launcher is larger than $(LAUNCHER_MAX_BYTES) bytes"; exit 1; fi

bench-launcher: launcher-release
	$(CARGO) run --locked --release --example bench_launcher -- $(LAUNCHER_BIN)

# `make bench` runs bench_launcher through the generic loop; it needs the release launcher first.
bench: launcher-release

# --- extend helper -------------------------------------------------------------------------------
# bench-extend: our extender vs `buildah bud --isolation chroot --layers` (3 RUN steps on bookworm;
# needs root or a subuid range, umoci, debootstrap on first run, buildah and the Debian mirror).
# `make bench` runs it through the generic bench_*.rs loop.
# extend-base-images: build (and cache) the sample base images the extender tests use.
.PHONY: bench-extend extend-base-images
bench-extend:
	$(CARGO) run --locked --release --example bench_extend

extend-base-images:
	mkdir -p target/extend-cache/busybox target/extend-cache/bookworm
	sh samples/base-images/busybox/build.sh target/extend-cache/busybox/layout
	sh samples/base-images/bookworm/build.sh target/extend-cache/bookworm/layout target/extend-cache/bookworm/rootfs
	chmod -R a+rX target/extend-cache/busybox/layout target/extend-cache/bookworm/layout
	touch target/extend-cache/busybox/layout.done target/extend-cache/bookworm/layout.done

# --- export helper (issue 5): export benchmark ---------------------------------------------------
.PHONY: bench-export
bench-export:
	$(CARGO) run --locked --release --example bench_export -p cnb-lifecycle

# --- samples helper (issue 8): the lifecycle's own image, the sample base images -----------------------
# image:          the lifecycle as an OCI image layout (static binaries at /cnb/lifecycle/, lifecycle.toml,
#                 the reference's labels), written by our own writer (cnb-mkimage) into $(LIFECYCLE_IMAGE).
# sample-images:  build (and cache) the Python sample's bookworm build/run images (needs root, debootstrap,
#                 the Debian mirror on first run) under target/samples-cache/python/images/{build,run}.
# demo-python:    the Python sample with creator -build-image (bookworm + python3 build/run images), run.
LIFECYCLE_IMAGE ?= out/lifecycle-image
.PHONY: image sample-images demo-python
demo-python: $(DEMO_BUILD)
	DEMO_PROFILE=$(DEMO_PROFILE) bash samples/demo-python.sh

image: build
	sh samples/lifecycle-image.sh $(RELEASE) $(LIFECYCLE_IMAGE)

sample-images: build-debug
	mkdir -p target/samples-cache/python
	sh samples/base-images/python/build.sh target/samples-cache/python/images target/samples-cache/python/rootfs
	chmod -R a+rX target/samples-cache/python/images
	sha256sum samples/base-images/python/build.sh | cut -d' ' -f1 | tr -d '\n' > target/samples-cache/python/images.done

# --- zstd helper (issue 4): layer and push benchmarks ---------------------------------------------
# bench-layer: layer creation (gzip-1, zstd levels 3..-7, zstd workers, umoci peer) on a generated
#   ~1 GiB tree; BENCH_LAYER_MB sizes it, BENCH_LAYER_ONLY=gzip-1,zstd1 picks configurations.
# bench-layer-real: the same on existing trees (default /usr/bin and /usr/share).
# bench-push: pushing the bench image to a loopback registry vs `skopeo copy` (ratio, request counts).
BENCH_LAYER_TREE ?= /usr/bin,/usr/share
.PHONY: bench-layer bench-layer-real bench-push
bench-layer:
	$(CARGO) run --locked --release -p cnb-lifecycle --example bench_layer

bench-layer-real:
	BENCH_LAYER_TREE=$(BENCH_LAYER_TREE) $(CARGO) run --locked --release -p cnb-lifecycle --example bench_layer

bench-push:
	$(CARGO) run --locked --release -p cnb-lifecycle --example bench_push

# --- linux/arm64 ---------------------------------------------------------------------------------
# arm64-smoke: the arm64 release binaries under qemu-user-static: static (no PT_INTERP), `-version` of
# lifecycle (through a phase symlink) and the launcher, and a detector run on a shell buildpack.
.PHONY: arm64-smoke
arm64-smoke:
	$(MAKE) build ARCH=arm64
	sh tools/arm64-smoke.sh target/aarch64-unknown-linux-gnu/release

# image-index: the lifecycle image for linux/amd64 and linux/arm64 as one OCI layout whose tag is a
# multi-arch image index (platform fields from each image's config); push with
# `skopeo copy --all oci:$(LIFECYCLE_IMAGE)-index:$(VERSION) docker://...`.
.PHONY: image-index
image-index:
	$(MAKE) build
	$(MAKE) build ARCH=arm64
	sh samples/lifecycle-image.sh target/x86_64-unknown-linux-gnu/release $(LIFECYCLE_IMAGE)-amd64
	LIFECYCLE_ARCH=arm64 LIFECYCLE_RUNNER=qemu-aarch64-static \
	  sh samples/lifecycle-image.sh target/aarch64-unknown-linux-gnu/release $(LIFECYCLE_IMAGE)-arm64
	rm -rf $(LIFECYCLE_IMAGE)-index
	python3 tools/oci-index.py $(LIFECYCLE_IMAGE)-index $(VERSION) $(LIFECYCLE_IMAGE)-amd64 $(LIFECYCLE_IMAGE)-arm64

# --- rel helper (issue 14): reliability campaigns ----------------------------------------------------
# stress: the long registry-fault campaign (120 runs across exporter, analyzer, restorer, rebaser behind
# a fault-injecting proxy), printing its outcome table. `make test` runs the same test in its short CI mode.
.PHONY: stress
stress: build-debug
	umask 022 && CNB_STRESS=1 $(CARGO) test --locked -p cnb-acceptance --test acceptance -- \
	  --nocapture --test-threads=1 registry_faults::

# --- perf helper (issue 16): creator fresh / no-op vs floors -------------------------------------
# bench-creator: creator fresh and no-op builds of a generated app (BENCH_CREATOR_MB, default 300,1024)
#   into an OCI layout vs sha256sum / deflate floors of the same bytes, peak RSS; BENCH_CREATOR_BASELINE
#   = another lifecycle build's bin dir to compare side by side. `make bench` runs it through the loop.
.PHONY: creator-release bench-creator
creator-release:
	$(CARGO) build --locked --release --target $(TARGET) --bin lifecycle --bin launcher

bench-creator: creator-release
	$(CARGO) run --locked --release -p cnb-lifecycle --example bench_creator

bench: creator-release
