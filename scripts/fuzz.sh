#!/usr/bin/env bash
# Runs each libFuzzer target for a bounded time (default 30 s each) with
# ASan+UBSan. Needs the generated protobuf sources: builds them with Bazel.
# Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
bazel build //ratelimit:config_cc_proto >/dev/null 2>&1
gen="$(bazel info bazel-bin 2>/dev/null)/ratelimit"
out="${TMPDIR:-/tmp}/sluice-fuzz"
mkdir -p "$out"
absl_libs=$(pkg-config --libs absl_flat_hash_map absl_status absl_statusor absl_synchronization \
  absl_time absl_strings absl_str_format absl_hash)
flags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I. -I"$(bazel info bazel-bin 2>/dev/null)")
echo "fuzz: building config_fuzzer with clang++"
srcs=$(ls ratelimit/*.cc | grep -v -e '_test.cc$' -e '_benchmark.cc$')
clang++ "${flags[@]}" tests/fuzz/config_fuzzer.cc $srcs "$gen/config.pb.cc" \
  -o "$out/config_fuzzer" -lprotobuf -lxxhash $absl_libs -lpthread
corpus="$out/config_corpus"
mkdir -p "$corpus"
cp tests/fuzz/config_corpus/* "$corpus/"
"$out/config_fuzzer" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 "$corpus" 2>&1 | tail -15
echo "fuzz: config_fuzzer ran ${secs}s without a crash"
