#!/bin/sh
# Builds the libFuzzer targets of tests/fuzz (clang++, ASan + UBSan) and runs
# each for a bounded time, starting from its committed seed corpus.
#
#   sh tests/hardening/fuzz.sh                 # CI: every target, FUZZ_SECONDS (30) each, JOBS (2) at a time
#   FUZZ_SECONDS=3600 sh tests/hardening/fuzz.sh fuzz_triplet   # a long local run of one target
#   sh tests/hardening/fuzz.sh --replay        # only re-run every committed corpus input
#
# The targets live in the ASan + UBSan build (build-hardening-asan, configured
# by sanitizers.sh); in CI the ASan stage has already built them. New inputs
# found during a run go to build-hardening-asan/corpus/<target>, never into
# the committed corpus; a crash leaves crash-<sha1> in
# build-hardening-asan/artifacts/<target>/ and fails the run. To reproduce:
#   build-hardening-asan/tests/fuzz/<target> <crash file>
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build="${BUILD_ROOT:-$root}/build-hardening-asan"
seconds=${FUZZ_SECONDS:-30}
replay=0
if [ "${1:-}" = "--replay" ]; then replay=1; shift; fi
if [ $# -gt 0 ]; then
  targets="$*"
else
  targets=$(cd "$root/tests/fuzz" && ls fuzz_*.cpp | sed 's/\.cpp$//' | tr '\n' ' ')
fi

BUILD_ONLY=1 TARGETS="$targets" sh "$root/tests/hardening/sanitizers.sh" asan

export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export ASAN_SYMBOLIZER_PATH="$(command -v llvm-symbolizer || true)"
jobs=${JOBS:-2}

# One target: fuzz (or replay) it, leave its log and a status file.
run_target() {
  t=$1
  seeds="$root/tests/fuzz/corpus/$t"
  work="$build/corpus/$t"
  artifacts="$build/artifacts/$t/"
  mkdir -p "$seeds" "$work" "$artifacts"
  log="$build/$t.log"
  if [ "$replay" = 1 ]; then
    echo "== $t: replaying $(ls "$seeds" | wc -l) corpus inputs"
    set -- -runs=0 "$seeds"
  else
    echo "== $t: fuzzing for ${seconds}s from $(ls "$seeds" | wc -l) seeds"
    set -- -max_total_time="$seconds" -max_len=4096 -timeout=20 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$artifacts" "$work" "$seeds"
  fi
  if "$build/tests/fuzz/$t" "$@" >"$log" 2>&1; then echo ok >"$build/$t.status"; else echo failed >"$build/$t.status"; fi
}

# The targets are single-threaded: run $jobs of them at a time.
running=0
for t in $targets; do
  rm -f "$build/$t.status"
  run_target "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait; running=0; fi
done
wait

summary=""
failed=""
for t in $targets; do
  log="$build/$t.log"
  if [ "$(cat "$build/$t.status" 2>/dev/null)" != ok ]; then
    tail -60 "$log"
    echo "fuzz.sh: $t FAILED; reproducer in $build/artifacts/$t/" >&2
    failed="$failed $t"
    continue
  fi
  [ "$replay" = 1 ] && continue
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  summary="$summary
$t: ${runs:-?} executions in ${seconds}s, $cov"
done
[ -z "$failed" ] || exit 1
echo "fuzz.sh: no crash, no sanitizer report, no property violation$summary"
