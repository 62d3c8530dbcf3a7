#!/bin/sh
# Compiler / standard / build-type matrix: g++ and clang++, C++17 and C++20,
# Debug and Release, warnings as errors. Each configuration builds
# tests/hardening/matrix (the umbrella header instantiated for float and
# double, run as a smoke test). Every header is also compiled on its own once
# per standard, in the first configuration of that standard in the list:
# whether a header includes what it uses depends on the standard and the
# standard library (both compilers use libstdc++ here), not on the compiler or
# the optimisation level (the libtorch adapter's headers are compiled with
# Torch's include directories when Torch is found, except by clang++ in C++20:
# see matrix/CMakeLists.txt). The first configuration also builds the benchmarks
# (bench/) and runs the robustness sweep. The full test suite is not rebuilt
# per configuration.
#
#   sh tests/hardening/matrix.sh                 # all 8
#   CONFIGS="clang++:20:Debug" sh tests/hardening/matrix.sh
#
# CI (.ci/run) passes three configurations its other stages do not build
# (g++ C++17 Debug, clang++ C++20 Release, g++ C++20 Debug), clang++ C++20
# before g++ C++20 so that each compiler checks the headers once: the README
# test command is the whole suite under g++ C++17 Release, and the ASan + UBSan
# stage is the whole suite under clang++ C++17 Debug.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
base="${BUILD_ROOT:-$root}/build-hardening-matrix"
sh "$root/cmake/install-debian-deps.sh" clang ninja-build libbenchmark-dev
configs=${CONFIGS:-"g++:17:Debug clang++:20:Debug g++:17:Release g++:20:Debug g++:20:Release clang++:17:Debug clang++:17:Release clang++:20:Release"}
checked=" "
for config in $configs; do
  cxx=${config%%:*}
  rest=${config#*:}
  std=${rest%%:*}
  type=${rest#*:}
  build="$base/$cxx-c++$std-$type"
  headers=OFF
  case "$checked" in
    *" $std "*) ;;
    *) headers=ON; checked="$checked$std " ;;
  esac
  first=OFF
  [ "$config" = "${configs%% *}" ] && first=ON
  start=$(date +%s)
  cmake -S "$root/tests/hardening/matrix" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_CXX_STANDARD="$std" -DCMAKE_BUILD_TYPE="$type" -DCMAKE_CXX_FLAGS_DEBUG=-O0 -DCHECK_HEADERS=$headers -DROBUSTNESS=$first -DBENCHMARKS=$first >/dev/null
  cmake --build "$build" -j"${JOBS:-2}"
  "$build/smoke_float"
  "$build/smoke_double"
  if [ "$first" = ON ]; then "$build/robustness"; fi
  echo "matrix: $cxx C++$std $type passed (headers on their own: $headers) in $(( $(date +%s) - start ))s"
done
echo "matrix.sh: all configurations passed"
