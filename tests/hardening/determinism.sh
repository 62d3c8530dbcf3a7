#!/bin/sh
# Cross-process determinism: runs the dump case of tests/test_determinism.cpp
# (in workload_tests) three times with
# CONTRASTIVE_DETERMINISM_DUMP (other heap and stack addresses under ASLR;
# the third run with MALLOC_PERTURB_, so a read of uninitialised heap memory
# would change the output) and requires byte-identical dumps.
#   sh tests/hardening/determinism.sh [build dir, default: build]
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
exe="$build/tests/workload_tests"
[ -x "$exe" ] || { echo "determinism.sh: $exe not built" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
CONTRASTIVE_DETERMINISM_DUMP="$out/1" "$exe" "[dump]" >/dev/null
CONTRASTIVE_DETERMINISM_DUMP="$out/2" "$exe" "[dump]" >/dev/null
MALLOC_PERTURB_=165 CONTRASTIVE_DETERMINISM_DUMP="$out/3" "$exe" "[dump]" >/dev/null
cmp "$out/1" "$out/2"
cmp "$out/1" "$out/3"
echo "determinism.sh: $(wc -l <"$out/1") workloads bitwise identical across 3 processes"
