# Sabot developer commands. `make test` is what CI runs (.ci/run).
JOBS ?= 2
CTEST_ARGS ?=
SOURCES = $(shell git ls-files '*.cc' '*.h' 2>/dev/null)

.PHONY: all deps build build-asan build-tsan test test-release test-asan check-format format \
        bench-micro demo clean

all: build

deps:
	@scripts/install-deps.sh

build/release/build.ninja:
	cmake --preset release >/dev/null
build/asan-ubsan/build.ninja:
	cmake --preset asan-ubsan >/dev/null

build: deps build/release/build.ninja
	cmake --build build/release -j $(JOBS)

build-asan: deps build/asan-ubsan/build.ninja
	cmake --build build/asan-ubsan -j $(JOBS)

check-format: deps
	@clang-format --dry-run --Werror $(SOURCES) && echo "format: clean"

format: deps
	clang-format -i $(SOURCES)

# The whole suite on the release build, then the unit tests under ASan+UBSan.
test: check-format build build-asan
	cd build/release && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)
	cd build/asan-ubsan && ctest --output-on-failure -j $(JOBS) -L unit $(CTEST_ARGS)

bench-micro: build
	@scripts/run-benchmarks.sh build/release

clean:
	rm -rf build
