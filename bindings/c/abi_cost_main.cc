// Runs exactly N calls of one variant, for instruction counts under
// callgrind (deterministic, unlike wall time on a shared VM): the C ABI's
// cost per call is the difference between two runs' counts over the
// difference in N, C ABI minus C++ (the cases: abi_cases.h).
//
//   abi_cost_main VARIANT N     VARIANT: cxx | cabi | cxx_rcpt | cabi_rcpt
// Run: bash bindings/c/abi_cost.sh
#include <cstdio>
#include <cstdlib>
#include <string>

#include "bindings/c/abi_cases.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: abi_cost_main cxx|cabi|cxx_rcpt|cabi_rcpt N\n");
    return 2;
  }
  const std::string variant = argv[1];
  const long n = std::atol(argv[2]);
  bool (sluice::AbiCases::*call)(size_t) = variant == "cxx" ? &sluice::AbiCases::CxxCheckAndCharge
                                           : variant == "cabi"
                                               ? &sluice::AbiCases::CAbiCheckAndCharge
                                           : variant == "cxx_rcpt"  ? &sluice::AbiCases::CxxRcpt
                                           : variant == "cabi_rcpt" ? &sluice::AbiCases::CAbiRcpt
                                                                    : nullptr;
  if (call == nullptr) {
    std::fprintf(stderr, "unknown variant %s\n", variant.c_str());
    return 2;
  }
  sluice::AbiCases cases;
  long admitted = 0;
  for (long i = 0; i < n; ++i) admitted += (cases.*call)(static_cast<size_t>(i));
  std::printf("%s %ld calls, %ld admitted\n", variant.c_str(), n, admitted);
  return admitted == n ? 0 : 1;
}
