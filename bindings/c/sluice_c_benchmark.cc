// The C ABI's cost per call: the same work through the C++ API and through
// sluice.h, in one run (the cases: abi_cases.h).
//
// Run: bazel run --config=opt //bindings/c:sluice_c_benchmark
#include "benchmark/benchmark.h"
#include "bindings/c/abi_cases.h"

namespace {

template <bool (sluice::AbiCases::*kCall)(size_t)>
void BM_Call(benchmark::State& state) {
  sluice::AbiCases cases;
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize((cases.*kCall)(i++));
}
BENCHMARK_TEMPLATE(BM_Call, &sluice::AbiCases::CxxCheckAndCharge)->Name("BM_CxxCheckAndCharge");
BENCHMARK_TEMPLATE(BM_Call, &sluice::AbiCases::CAbiCheckAndCharge)->Name("BM_CAbiCheckAndCharge");
BENCHMARK_TEMPLATE(BM_Call, &sluice::AbiCases::CxxRcpt)->Name("BM_CxxEngineRcpt");
BENCHMARK_TEMPLATE(BM_Call, &sluice::AbiCases::CAbiRcpt)->Name("BM_CAbiEngineRcpt");

}  // namespace

BENCHMARK_MAIN();
