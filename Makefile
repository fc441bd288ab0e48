# A thin front over CMake. `make run` and `make test` work on a fresh Debian
# machine: they install what is missing first (as root, or through sudo).
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS ?=
# A failed test runs once more before it counts: two tests are known to fail
# now and then on a loaded 2-core machine (README, "Tests"); a test that
# fails twice fails the run. `make test RETRY=` turns this off.
RETRY      ?= --repeat until-pass:2

.PHONY: all deps deps-run build test test-unit test-asan run bench format lint clean image

all: build

deps:
	@bash deploy/install-deps.sh

deps-run:
	@bash deploy/install-deps.sh run

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(RETRY) $(CTEST_ARGS)

test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DJOBD_SANITIZE=address,undefined
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && JOBD_TEST_TIMEOUT_MULTIPLIER=4 \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) $(RETRY) $(CTEST_ARGS)

run: deps-run $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target jobd jobctl
	@bash deploy/run-demo.sh $(BUILD)

bench: build
	@bash tests/bench/run.sh $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# clang-tidy with .clang-tidy's checks, warnings as errors (needs the build's
# compile_commands.json); a few files per process, $(JOBS) at a time.
lint: build
	git ls-files 'client/*.c' 'daemon/*.c' | xargs -P $(JOBS) -n 4 clang-tidy -p $(BUILD) --quiet

# The container image (deploy/Dockerfile), built with docker, podman or
# buildah, whichever is found first; IMAGE names it. deploy/test-image.sh
# builds it the same way and tests it.
IMAGE ?= jobd:$(shell sed -n 's/^\#define JOBD_VERSION "\(.*\)"/\1/p' include/jobd/version.h)
image:
	@IMAGE='$(IMAGE)' bash deploy/build-image.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
