#!/usr/bin/env bash
# Runs each libFuzzer target with ASan+UBSan, bounded in time (SECONDS,
# default 30) and in runs. In CI (CI=true) the run is reproducible: a fixed
# seed and a fixed number of runs, so a submission's result does not depend
# on luck; elsewhere every run explores afresh.
# Needs the generated protobuf sources: builds them with Bazel.
# Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
bazel build //ratelimit:config_cc_proto >/dev/null 2>&1
gen="$(bazel info bazel-bin 2>/dev/null)/ratelimit"
out="${TMPDIR:-/tmp}/sluice-fuzz"
mkdir -p "$out"
absl_libs=$(pkg-config --libs absl_flat_hash_map absl_status absl_statusor absl_synchronization \
  absl_time absl_strings absl_str_format absl_hash absl_random_random)
flags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I. -I"$(bazel info bazel-bin 2>/dev/null)")
run_target() {  # name, corpus dir, sources...
  local name="$1" corpus_src="$2"; shift 2
  echo "fuzz: building $name with clang++"
  clang++ "${flags[@]}" "$@" -o "$out/$name" -lprotobuf -lxxhash -lpsl -lidn2 -licui18n -licuuc -lcares -lhiredis $absl_libs -lpthread
  local corpus="$out/${name}_corpus"
  local fixed=()
  if [[ "${CI:-}" == "true" || -n "${SLUICE_FUZZ_SEED:-}" ]]; then
    fixed=(-seed="${SLUICE_FUZZ_SEED:-1}" -runs="${SLUICE_FUZZ_RUNS:-200000}")
    rm -rf "$corpus"  # reproducible: start from the committed seeds only
  fi
  mkdir -p "$corpus"
  cp "$corpus_src"/* "$corpus/"
  "$out/$name" -max_total_time="$secs" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$out/$name-" "${fixed[@]}" \
    -print_final_stats=1 "$corpus" 2>&1 | tail -4
  echo "fuzz: $name ran ${secs}s without a crash"
}

# The library's sources of a folder tree, without tests and benchmarks.
lib_srcs() { find "$@" -name '*.cc' ! -name '*_test.cc' ! -name '*_benchmark.cc' | sort; }
rl_srcs=$(lib_srcs ratelimit)
run_target config_fuzzer tests/fuzz/config_corpus tests/fuzz/config_fuzzer.cc $rl_srcs "$gen/config.pb.cc"
run_target normalizer_fuzzer tests/fuzz/normalizer_corpus tests/fuzz/normalizer_fuzzer.cc \
  $(lib_srcs reputation/content | grep -v url_extractor)
run_target url_fuzzer tests/fuzz/url_corpus tests/fuzz/url_fuzzer.cc reputation/content/url_extractor.cc
run_target dns_answer_fuzzer tests/fuzz/dns_corpus tests/fuzz/dns_answer_fuzzer.cc \
  reputation/dns/dns_answer.cc
run_target mail_log_fuzzer tests/fuzz/mail_log_corpus tests/fuzz/mail_log_fuzzer.cc \
  bindings/logs/mail_log.cc ratelimit/ip.cc
run_target report_fuzzer tests/fuzz/report_corpus tests/fuzz/report_fuzzer.cc \
  bindings/report/html_report.cc bindings/engine/notice_record.cc $rl_srcs "$gen/config.pb.cc"
rep_srcs=$(lib_srcs reputation)
run_target policy_fuzzer tests/fuzz/policy_corpus tests/fuzz/policy_fuzzer.cc \
  $(lib_srcs bindings/engine bindings/postfix bindings/report | grep -v -e policyd_main -e policy_server -e admin.cc -e metrics.cc) \
  $rep_srcs $rl_srcs "$gen/config.pb.cc"
run_target milter_fuzzer tests/fuzz/milter_corpus tests/fuzz/milter_fuzzer.cc \
  bindings/milter/milter_session.cc \
  $(lib_srcs bindings/engine bindings/postfix bindings/report | grep -v -e policyd_main -e policy_server -e admin.cc -e metrics.cc) \
  $rep_srcs $rl_srcs "$gen/config.pb.cc"
