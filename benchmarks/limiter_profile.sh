#!/usr/bin/env bash
# The limiter's hot path, per check-and-charge: instructions, data-cache
# misses (first level and last level) and branch mispredictions, for sluice
# and the global-mutex baseline on the benchmark's rows. Counted by
# callgrind's cache and branch simulation (valgrind), so the figures are the
# same on every run and on machines whose VM hides the hardware counters;
# where perf_event_open works, the binary also prints the real counters
# (run it without valgrind: limiter_benchmark --profile=sluice ...).
# Only the measured checks count: 2M warm-up checks run first, outside
# MeasuredChecks.
# Usage: benchmarks/limiter_profile.sh [checks per row, default 100000]
set -euo pipefail
cd "$(dirname "$0")/.."
checks="${1:-100000}"
bash scripts/setup.sh
bazel build --config=opt //benchmarks:limiter_benchmark >/dev/null 2>&1
bin="$(bazel info --config=opt bazel-bin 2>/dev/null)/benchmarks/limiter_benchmark"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) vCPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)"
echo "checks per row: $checks (callgrind: I1/D1 as this CPU's L1, LL as its last level)"
printf '| %-34s | %12s | %10s | %10s | %14s |\n' row instructions "D1 misses" "LL misses" "branch misses"
printf '|%s|%s:|%s:|%s:|%s:|\n' "------------------------------------" "-------------" "-----------" "-----------" "---------------"
row() {
  local name="$1"; shift
  local f="$out/cg.$RANDOM"
  valgrind --tool=callgrind --callgrind-out-file="$f" --cache-sim=yes --branch-sim=yes \
    --toggle-collect='*MeasuredChecks*' "$bin" "$@" --checks="$checks" >/dev/null 2>&1
  # The totals line: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw Bc Bcm Bi Bim.
  awk -v name="$name" -v n="$checks" '/^summary:/ || /^totals:/ {
      printf "| %-34s | %12.1f | %10.2f | %10.2f | %14.2f |\n", name, $2 / n,
        ($6 + $7) / n, ($9 + $10) / n, ($12 + $14) / n; exit }' "$f"
}
row "sluice, 5 levels, 1K hot set" --profile=sluice --n=1000
row "global mutex, 5 levels, 1K hot set" --profile=mutex --n=1000
row "sluice, 5 levels, 10K uniform" --profile=sluice --n=10000
row "sluice, 5 levels, 1M mailboxes" --profile=sluice --n=1000000
row "global mutex, 5 levels, 1M" --profile=mutex --n=1000000
row "sluice, GCRA, 1K hot set" --profile=sluice --n=1000 --gcra
row "global mutex, GCRA, 1K hot set" --profile=mutex --n=1000 --gcra
row "sluice, 3 levels, 1K hot set" --profile=sluice --n=1000 --levels=3
row "global mutex, 3 levels, 1K hot set" --profile=mutex --n=1000 --levels=3
