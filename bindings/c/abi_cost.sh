#!/usr/bin/env bash
# Instructions per call through the C ABI and through the C++ API (callgrind:
# deterministic), for check-and-charge and a whole RCPT stage. Each count is
# the difference of two runs (N and 2N calls) over N, so setup cancels out.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { echo "needs valgrind"; exit 1; }
bazel build --config=opt //bindings/c:abi_cost_main >/dev/null 2>&1
bin="$(bazel info --config=opt bazel-bin 2>/dev/null)/bindings/c/abi_cost_main"
n=20000
count() {  # VARIANT CALLS -> instructions
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')  commit: $(git rev-parse --short HEAD)"
for v in cxx cabi cxx_rcpt cabi_rcpt; do
  a=$(count "$v" "$n")
  b=$(count "$v" $((2 * n)))
  echo "$v: $(((b - a) / n)) instructions per call"
done
