# cnb-lifecycle — see README.md.
#
#   make build                  release binaries (static) in target/$(TARGET)/release/
#   make install DESTDIR=dir    dir/cnb/lifecycle/<phase> + dir/cnb/lifecycle/lifecycle.toml
#   make test                   fmt check, clippy -D warnings, unit + acceptance tests (what CI runs)
#   make bench                  phases/examples/bench_*.rs in release mode
#   make demo                   end-to-end demo (issue 8)
#   make clean
#
# The target triple is explicit (.cargo/config.toml sets it and +crt-static) so that binaries are static
# while build scripts and proc-macros stay dynamic.

TARGET  ?= x86_64-unknown-linux-gnu
CARGO   ?= cargo
DESTDIR ?= out/install
PHASES  := analyzer detector restorer extender builder exporter rebaser creator launcher
RELEASE := target/$(TARGET)/release
DEBUG   := target/$(TARGET)/debug

.PHONY: build build-debug toolchain fmt-check lint unit acceptance test bench demo install clean

build:
	$(CARGO) build --locked --release --bins

build-debug:
	$(CARGO) build --locked --bins

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

unit:
	$(CARGO) test --locked --workspace --lib --bins

# Acceptance tests run the built debug binaries as separate processes (acceptance/src/harness.rs);
# set CNB_LIFECYCLE_BIN_DIR to run them against another lifecycle build.
acceptance: build-debug
	$(CARGO) test --locked -p cnb-acceptance

test: lint build-debug
	$(CARGO) test --locked --workspace --no-fail-fast

bench:
	@benches=$$(ls phases/examples/bench_*.rs 2>/dev/null | sed 's|.*/||; s|\.rs$$||'); \
	if [ -z "$$benches" ]; then echo "make bench: no benchmarks yet (phases/examples/bench_*.rs)"; exit 0; fi; \
	for b in $$benches; do \
	  echo "==> $$b"; \
	  $(CARGO) run --locked --release -p cnb-lifecycle --example $$b || exit 1; \
	done

demo:
	@echo "make demo: not ready yet — the end-to-end demo lands with issue 8."; exit 1

install: build
	mkdir -p $(DESTDIR)/cnb/lifecycle
	for b in $(PHASES); do install -m 0755 $(RELEASE)/$$b $(DESTDIR)/cnb/lifecycle/$$b; done
	$(RELEASE)/lifecycle-descriptor > $(DESTDIR)/cnb/lifecycle/lifecycle.toml.tmp
	mv $(DESTDIR)/cnb/lifecycle/lifecycle.toml.tmp $(DESTDIR)/cnb/lifecycle/lifecycle.toml

clean:
	$(CARGO) clean
	rm -rf out

# ---- targets added by other helpers go below, each in its own clearly separated block ----
