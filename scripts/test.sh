#!/usr/bin/env bash
# README's test command: installs what is needed, then runs the whole suite
#   1. every test target, normal build
#   2. every test target under ASan + UBSan (--config=asan)
#   3. the concurrency tests under ThreadSanitizer (--config=tsan)
#   4. each libFuzzer target for a bounded time (scripts/fuzz.sh)
# and ends with one line "N passed, N failed" (over all of the above).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

logdir="${TMPDIR:-/tmp}/sluice-test-logs"
mkdir -p "$logdir"
passed=0
failed=0

run_bazel() {  # label, bazel args...
  local label="$1"; shift
  local log="$logdir/$label.log"
  echo "== $label: bazel test $*"
  bazel test --build_tests_only --test_summary=short "$@" >"$log" 2>&1
  local rc=$?
  local p f
  p=$(grep -cE '^//[^ ]+ +(\(cached\) )?PASSED' "$log")
  f=$(grep -cE '^//[^ ]+ +(\(cached\) )?(FAILED|TIMEOUT|FLAKY|NO STATUS|INCOMPLETE)' "$log")
  grep -E '^//[^ ]+ +' "$log" | sed "s/^/   [$label] /"
  if [[ $rc -ne 0 && $f -eq 0 ]]; then
    # Bazel failed before running tests (e.g. a build error): show why.
    grep -E 'ERROR|error:' "$log" | head -20
    f=1
  fi
  passed=$((passed + p))
  failed=$((failed + f))
}

run_bazel normal //...
run_bazel asan --config=asan //...
run_bazel tsan --config=tsan --test_tag_filters=concurrency //...

echo "== fuzz: scripts/fuzz.sh ${SLUICE_FUZZ_SECONDS:-30}"
if bash scripts/fuzz.sh "${SLUICE_FUZZ_SECONDS:-30}" >"$logdir/fuzz.log" 2>&1; then
  passed=$((passed + 1))
  tail -2 "$logdir/fuzz.log" | sed 's/^/   [fuzz] /'
else
  failed=$((failed + 1))
  tail -30 "$logdir/fuzz.log"
fi

echo "logs in $logdir"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
