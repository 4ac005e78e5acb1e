#!/usr/bin/env bash
# The Python package's decisions per second next to the C ABI's, one run.
set -euo pipefail
cd "$(dirname "$0")/../.."
bazel build --config=opt //bindings/c:libsluice.so.0 //bindings/c:sluice_c_benchmark >/dev/null 2>&1
bin="$(bazel info --config=opt bazel-bin 2>/dev/null)"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')  machine: $(nproc) vCPU  commit: $(git rev-parse --short HEAD)"
"$bin/bindings/c/sluice_c_benchmark" --benchmark_filter=CAbi --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true 2>/dev/null | grep _median
SLUICE_LIBRARY="$bin/bindings/c/libsluice.so.0" PYTHONPATH=bindings/python \
  /usr/bin/python3 bindings/python/benchmark.py
