#!/bin/sh
# Sanitizer builds with clang++, each in its own build directory.
#
#   sh tests/hardening/sanitizers.sh asan   # AddressSanitizer + UndefinedBehaviorSanitizer, whole ctest suite
#                                           # (the libFuzzer targets too: ctest replays their committed corpora)
#   sh tests/hardening/sanitizers.sh tsan   # ThreadSanitizer, workload_tests (tests/test_concurrency.cpp, test_determinism.cpp)
#
# Any report fails the run (-fno-sanitize-recover=all, halt_on_error=1).
# Eigen's bounds assertions stay on (no NDEBUG), so an out-of-range coeff()
# aborts too. Environment:
#   BUILD_ROOT  where build-hardening-<mode> goes (default: the repository root)
#   TARGETS     build only these targets (default: all); ctest then runs only the tests of built targets
#   JOBS        parallel jobs (default 2)
#   BUILD_ONLY  1: configure and build, run nothing (tests/hardening/fuzz.sh builds its targets this way)
set -eu
mode=${1:?usage: sanitizers.sh asan|tsan}
root=$(cd "$(dirname "$0")/../.." && pwd)
build="${BUILD_ROOT:-$root}/build-hardening-$mode"
jobs=${JOBS:-2}
sh "$root/cmake/install-debian-deps.sh" clang libclang-rt-14-dev llvm ninja-build

case "$mode" in
  asan)
    flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -O0 -gline-tables-only"
    export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
    default_targets=all
    # Two families run most of their time in uninlined Eigen at -O0
    # (finite-difference checks at N = 128; every loss on 1 to 3 threads):
    # -O1 costs them 3 minutes more to compile and saves about 14 to run.
    o1_families="metric_tests;openmp_tests"
    # The fuzz targets share this build (they add -fsanitize=fuzzer and -O1 to
    # the same ASan + UBSan flags), so CI compiles them while the suite builds.
    fuzzers=ON
    ;;
  tsan)
    flags="-fsanitize=thread -fno-omit-frame-pointer -O0 -gline-tables-only"
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"
    default_targets=workload_tests
    o1_families=
    fuzzers=OFF
    ;;
  *) echo "unknown mode $mode (asan|tsan)" >&2; exit 2 ;;
esac
export ASAN_SYMBOLIZER_PATH="$(command -v llvm-symbolizer || true)"
targets=${TARGETS:-$default_targets}

# Debug keeps Eigen's assertions. -O0: the instrumented suite compiles in a
# third of the -O1 time and still runs in about a minute; the sanitizers
# see every access either way.
# The libtorch adapter is off here: Debian's libtorch is not built with the
# sanitizers, so its uninstrumented code would give false reports (TSan) or
# container-overflow / ODR mismatches (ASan) that are not ours. Its tests run
# in the plain build; the adapter only views tensors and calls the library,
# which this stage covers in full.
# The Python module is off for the same reason: an instrumented extension
# would run inside the uninstrumented /usr/bin/python3 and torch (ASan must
# be loaded first, TSan sees Python's and torch's threads); the module only
# copies arrays and calls the library, and its tests run in the plain build.
# The MPI layer is off too: Debian's Open MPI is not instrumented, and
# LeakSanitizer reports the allocations MPI_Init keeps past MPI_Finalize; its
# tests (mpi_np1 ... mpi_np4, mpi_digits_np1_np2) run in the plain build, and
# the library code they call is the reference-set and batch paths this stage
# covers.
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG= \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_CXX_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCONTRASTIVE_WITH_LIBTORCH=OFF -DCONTRASTIVE_WITH_PYTHON=OFF -DCONTRASTIVE_WITH_MPI=OFF \
  -DCONTRASTIVE_BUILD_BENCHMARKS=OFF -DCONTRASTIVE_INSTALL=OFF -DCONTRASTIVE_BUILD_FUZZERS=$fuzzers \
  -DCONTRASTIVE_TEST_FAMILIES_O1="$o1_families" >/dev/null
# shellcheck disable=SC2086
cmake --build "$build" -j"$jobs" --target $targets
[ "${BUILD_ONLY:-0}" = 1 ] && exit 0

if [ "$mode" = tsan ]; then
  "$build/tests/workload_tests"
else
  # Consumer projects are plain builds of the install/add_subdirectory paths,
  # already covered by the main suite; everything else runs instrumented.
  ctest --test-dir "$build" -j"$jobs" --output-on-failure -E "^consumer_"
fi
echo "sanitizers.sh $mode: no reports"
