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

# --- registry helper: `push` benchmark (ours vs skopeo copy to a loopback registry) ---
.PHONY: bench-push
bench: bench-push
bench-push:
	$(CARGO) run --locked --release -p cnb-lifecycle --example bench_push
