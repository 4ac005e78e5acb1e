#!/usr/bin/env bash
# Builds the benchmarks optimised and runs them; prints the machine first.
# Usage: benchmarks/run.sh [extra Google Benchmark flags]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bazel build --config=opt //benchmarks:limiter_benchmark //ratelimit:counters_benchmark \
  //reputation/content:fingerprint_benchmark //benchmarks:fingerprint_corpus_benchmark >/dev/null 2>&1
bin="$(bazel info --config=opt bazel-bin 2>/dev/null)"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) vCPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)"
"$bin/ratelimit/counters_benchmark" --benchmark_min_time=0.5 "$@"
"$bin/benchmarks/limiter_benchmark" --benchmark_min_time=1 --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true "$@"
corpus="$(bash benchmarks/corpus.sh)"
"$bin/reputation/content/fingerprint_benchmark" --benchmark_min_time=0.5 "$@"
# Detection rates and the burst simulation; then the throughput in a fresh
# process (the detection part's millions of allocations slow TLSH's heap),
# sluice and its peers interleaved at random so a machine that drifts in
# speed does not bias the ratios.
"$bin/benchmarks/fingerprint_corpus_benchmark" --corpus "$corpus" --detection_only
"$bin/benchmarks/fingerprint_corpus_benchmark" --corpus "$corpus" --throughput_only \
  --benchmark_repetitions=9 --benchmark_enable_random_interleaving=true \
  --benchmark_report_aggregates_only=true "$@"
# The same sluice rows on SSE2 only (what a CPU without AVX-512 runs).
"$bin/benchmarks/fingerprint_corpus_benchmark" --corpus "$corpus" --throughput_only --sse2_only \
  --benchmark_filter=Sluice --benchmark_repetitions=9 --benchmark_enable_random_interleaving=true \
  --benchmark_report_aggregates_only=true "$@"
