#!/usr/bin/env bash
# Builds Drover and runs the whole test suite:
#   1. a RelWithDebInfo build running every test (unit and end-to-end: the real binary,
#      real daemons, real servers on loopback), then
#   2. a Debug build with AddressSanitizer + UBSan running the unit tests.
# Needs the packages of deploy/bootstrap.sh. JOBS=N to change parallelism.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}

echo "== build (RelWithDebInfo)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$JOBS"

echo "== tests"
ctest --test-dir build --output-on-failure -j "$JOBS" --timeout 300

echo "== unit tests under AddressSanitizer + UBSan (Debug)"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DDROVER_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$JOBS" --target unit_tests
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan -L unit --output-on-failure -j "$JOBS" --timeout 300
