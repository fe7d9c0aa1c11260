# Sabot developer commands. `make test` is what CI runs (.ci/run).
JOBS ?= 2
CTEST_ARGS ?=
SOURCES = $(shell git ls-files '*.cc' '*.h' 2>/dev/null)

.PHONY: all deps build build-asan build-tsan build-fuzz fuzz fuzz-smoke test check-format check-layering format bench-micro bench demo clean

all: build

deps:
	@scripts/install-deps.sh

build/release/build.ninja:
	cmake --preset release >/dev/null
build/asan-ubsan/build.ninja:
	cmake --preset asan-ubsan >/dev/null
build/tsan/build.ninja:
	cmake --preset tsan >/dev/null

build: deps build/release/build.ninja
	cmake --build build/release -j $(JOBS)

build-asan: deps build/asan-ubsan/build.ninja
	cmake --build build/asan-ubsan -j $(JOBS)

# Only the tests labelled `runtime` (threads: scheduler, channels, broker, state) run under TSan.
TSAN_TARGETS = executor_test environment_test record_test topic_test memory_broker_test \
  watermark_test process_test stateful_api_test window_test join_test dedup_test topn_test \
  files_test keyed_state_job_test nexmark_queries_test nexmark_windowed_queries_test fraud_job_test enrichment_job_test coordinator_test \
  recovery_test observe_test app_test
empty :=
space := $(empty) $(empty)
TSAN_REGEX = ^($(subst $(space),|,$(strip $(TSAN_TARGETS))))$$
build-tsan: deps build/tsan/build.ninja
	cmake --build build/tsan -j $(JOBS) $(addprefix --target ,$(TSAN_TARGETS))

# libFuzzer targets (fuzz/, clang + ASan + UBSan, their own build dir). `make fuzz` runs each for
# FUZZ_SECONDS; `make test` runs each for FUZZ_SMOKE_SECONDS. Findings fail the target.
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 20
build/fuzz/build.ninja:
	cmake --preset fuzz >/dev/null
build-fuzz: deps build/fuzz/build.ninja
	cmake --build build/fuzz -j $(JOBS) --target fuzzers
fuzz: build-fuzz
	scripts/fuzz.sh $(FUZZ_SECONDS)
fuzz-smoke: build-fuzz
	SABOT_FUZZ_SMOKE=1 scripts/fuzz.sh $(FUZZ_SMOKE_SECONDS)

check-format: deps
	@clang-format --dry-run --Werror $(SOURCES) && echo "format: clean"

# Module layering (docs/design.md, "Layering"): no build, a few seconds.
check-layering:
	@scripts/check-layering.sh --self-test && scripts/check-layering.sh

format: deps
	clang-format -i $(SOURCES)

# The whole suite on the release build, the unit tests under ASan+UBSan, the runtime tests under
# TSan, then a short run of every fuzz target (the fuzz-smoke step).
test: check-format check-layering build build-asan build-tsan build-fuzz
	cd build/release && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)
	cd build/asan-ubsan && ctest --output-on-failure -j $(JOBS) -L unit $(CTEST_ARGS)
	cd build/tsan && ctest --output-on-failure -j $(JOBS) -L runtime -R '$(TSAN_REGEX)' $(CTEST_ARGS)
	$(MAKE) --no-print-directory fuzz-smoke

bench-micro: build
	@scripts/run-benchmarks.sh build/release

# The flagship job: builds only the `sabot` command, then runs the fraud-detection demo on the
# embedded broker. DEMO_ARGS passes flags, e.g. make demo DEMO_ARGS="--transactions 100000 --quiet".
DEMO_ARGS ?=
demo: deps build/release/build.ninja
	cmake --build build/release -j $(JOBS) --target sabot
	build/release/tools/sabot/sabot demo fraud $(DEMO_ARGS)

clean:
	rm -rf build
