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

.PHONY: deps build bench bench-baseline test test-native test-baseline clean fuzz test-asan test-tsan

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

# Tests run serially (XCTest then prints its "Executed N tests" summary) in release builds (debug
# builds of SIMD code are ~700× slower): once for the host ISA, once for Swift's default target
# (kernels must be correct in both builds), then under AddressSanitizer and ThreadSanitizer.
test: deps test-native test-baseline test-asan test-tsan

test-native:
	$(SWIFT) test -c release $(NATIVE_BUILD) $(NATIVE_FLAGS) --disable-swift-testing

test-baseline:
	$(SWIFT) test -c release $(BASELINE_BUILD) --disable-swift-testing

# The suite under AddressSanitizer (with LeakSanitizer) and ThreadSanitizer. Release builds: debug
# builds of SIMD code are ~700× slower, and the sanitizers instrument release code as well. XCTest
# leaks its own bookkeeping, suppressed by scripts/lsan-xctest.supp. A report fails the run (ASan
# aborts at the first error, LSan and TSan exit non-zero at the end).
test-asan: deps
	LSAN_OPTIONS=suppressions=$(CURDIR)/scripts/lsan-xctest.supp \
		$(SWIFT) test -c release --scratch-path .build-asan --sanitize=address --disable-swift-testing

# Under ThreadSanitizer the whole-model tests (composition against naive kernels, parameter counts,
# weight files) took 270 of 337 s; they run single-threaded code covered by the three runs above,
# so TSan runs the rest: kernels, layers, concurrency (many threads calling one model included), I/O.
TSAN_SKIP ?= ResNetTests|WeightsTests|AttentionResNetTests

test-tsan: deps
	$(SWIFT) test -c release --scratch-path .build-tsan --sanitize=thread --disable-swift-testing \
		--skip '$(TSAN_SKIP)'

# Fuzzing of the .npy and safetensors readers (Fuzz/): one million seeded structure-aware mutations
# per reader, then libFuzzer (coverage-guided, seeded with the same corpus and a token dictionary)
# for FUZZ_SECONDS per reader. libFuzzer stops on a crash, a violated invariant, an input slower
# than 5 s, or a single allocation over 64 MiB (inputs are at most 4 KiB: a legitimate parse
# allocates a few KiB). Needs the toolchain's lld (`-use-ld=lld`): ld.gold fails on this link.
FUZZ_SECONDS ?= 60
FUZZ_FLAGS := -Xswiftc -sanitize=fuzzer -Xswiftc -use-ld=lld \
	-Xlinker --undefined=LLVMFuzzerRunDriver -Xlinker --export-dynamic-symbol=LLVMFuzzerRunDriver

fuzz: deps
	$(SWIFT) build -c release --scratch-path .build-fuzz $(FUZZ_FLAGS) --product spatial-fuzz
	set -e; for format in npy safetensors; do \
		.build-fuzz/release/spatial-fuzz mutate $$format --count 1000000; \
		.build-fuzz/release/spatial-fuzz corpus $$format .build-fuzz/corpus-$$format; \
		.build-fuzz/release/spatial-fuzz libfuzzer $$format -max_total_time=$(FUZZ_SECONDS) \
			-timeout=5 -malloc_limit_mb=64 -print_final_stats=1 -dict=.build-fuzz/corpus-$$format.dict \
			-artifact_prefix=.build-fuzz/crash-$$format- .build-fuzz/corpus-$$format 2>&1 \
			| grep -vE '^#[0-9]+[[:space:]]+(NEW|REDUCE)'; \
		test $${PIPESTATUS[0]} -eq 0; \
	done

clean:
	rm -rf .build .build-native .build-baseline .build-fuzz .build-asan .build-tsan
