// The vector setup shared by the content folder's hot loops (normaliser
// and fingerprint): SSE2 intrinsics wherever the target has them, and
// AVX-512 paths compiled with per-function target attributes, chosen at
// start-up from what the CPU reports (the same outputs either way).
//
// SLUICE_HAVE_AVX512 is defined where such paths can be compiled (x86-64
// with GCC or Clang). Include this header first among the vector code: it
// also silences GCC 12's false "maybe uninitialized" warnings about
// AVX-512 intrinsics, which start from an undefined vector.
//
// Thread safety: CpuVectors() is thread-safe.
#ifndef SLUICE_REPUTATION_CONTENT_INTERNAL_SIMD_H_
#define SLUICE_REPUTATION_CONTENT_INTERNAL_SIMD_H_

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SLUICE_HAVE_AVX512 1
#endif

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace sluice {
namespace internal {

// What of AVX-512 the CPU has (all false where SLUICE_HAVE_AVX512 is not
// defined).
struct Avx512 {
  bool f = false;      // foundation
  bool bw = false;     // byte and word masks
  bool dq = false;     // 64-bit lanes
  bool vbmi = false;   // byte-table lookups
  bool vbmi2 = false;  // byte compress (with POPCNT)
};

inline Avx512 CpuVectors() {
  Avx512 a;
#if defined(SLUICE_HAVE_AVX512)
  __builtin_cpu_init();
  a.f = __builtin_cpu_supports("avx512f");
  a.bw = __builtin_cpu_supports("avx512bw");
  a.dq = __builtin_cpu_supports("avx512dq");
  a.vbmi = a.bw && __builtin_cpu_supports("avx512vbmi");
  a.vbmi2 = a.bw && __builtin_cpu_supports("avx512vbmi2") && __builtin_cpu_supports("popcnt");
#endif
  return a;
}

}  // namespace internal
}  // namespace sluice

#endif  // SLUICE_REPUTATION_CONTENT_INTERNAL_SIMD_H_
