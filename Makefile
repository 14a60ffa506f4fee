# The two entry points (README.md): `make bench` and `make test`. Both install the system libraries
# they need on a fresh Debian machine (run as root) and build for the host's vector ISA.
SHELL := /bin/bash
SWIFT ?= swift
# Native ISA: Swift's default x86-64 target is SSE-only (docs/design.md).
NATIVE_FLAGS := -Xswiftc -target-cpu -Xswiftc native -Xcc -march=native -Xswiftc -DSPATIAL_ATTENTION_FMA
NATIVE_BUILD := --scratch-path .build-native
BASELINE_BUILD := --scratch-path .build-baseline
# An OpenBLAS worker spins after a multithreaded GEMM and steals a core from our next kernel.
export OPENBLAS_THREAD_TIMEOUT ?= 4
BENCH_ARGS ?= all

.PHONY: deps build bench bench-baseline test test-native test-baseline clean

deps:
	@if ! dpkg -s libopenblas-dev liblapacke-dev >/dev/null 2>&1; then \
		echo "installing libopenblas-dev liblapacke-dev"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas-dev liblapacke-dev; \
	fi

build: deps
	$(SWIFT) build -c release $(NATIVE_BUILD) $(NATIVE_FLAGS)

bench: build
	.build-native/release/spatial-bench $(BENCH_ARGS)

bench-baseline: deps
	$(SWIFT) build -c release $(BASELINE_BUILD) --product spatial-bench
	.build-baseline/release/spatial-bench $(BENCH_ARGS)

# Tests run in release builds (debug builds of SIMD code are ~700× slower), once for the host ISA
# and once for Swift's default target, since kernels must be correct in both builds.
test: deps test-native test-baseline

test-native:
	$(SWIFT) test -c release $(NATIVE_BUILD) $(NATIVE_FLAGS) --parallel --disable-swift-testing

test-baseline:
	$(SWIFT) test -c release $(BASELINE_BUILD) --parallel --disable-swift-testing

clean:
	rm -rf .build .build-native .build-baseline
