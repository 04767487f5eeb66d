# cnb-lifecycle — see README.md
TARGET  ?= x86_64-unknown-linux-gnu
CARGO   ?= cargo
DESTDIR ?= out/install

.PHONY: build build-debug test lint unit acceptance demo bench install clean

build:
	$(CARGO) build --locked --release

build-debug:
	$(CARGO) build --locked --bins

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

unit:
	$(CARGO) test --locked --workspace --lib --bins

acceptance: build-debug
	$(CARGO) test --locked -p cnb-acceptance

test: lint build-debug
	$(CARGO) test --locked --workspace

demo:
	@echo "make demo: not yet implemented (see issue 8)"; exit 1

bench:
	@echo "make bench: no benchmarks yet"

install: build
	mkdir -p $(DESTDIR)/cnb/lifecycle
	for b in analyzer detector restorer extender builder exporter rebaser creator launcher; do \
	  install -m 0755 target/$(TARGET)/release/$$b $(DESTDIR)/cnb/lifecycle/$$b; done

clean:
	$(CARGO) clean
	rm -rf out

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

bench: bench-launcher
