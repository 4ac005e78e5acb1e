// libFuzzer target: the body normaliser and fingerprinter on any bytes,
// fed whole and in chunks, and (where the CPU has AVX-512) with SSE2 only;
// all ways must give the same fingerprint.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "reputation/fingerprint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sluice::Fingerprinter* whole = new sluice::Fingerprinter();
  static sluice::Fingerprinter* chunked = new sluice::Fingerprinter();
  absl::string_view msg(reinterpret_cast<const char*>(data), size);
  sluice::Fingerprint a, b;
  whole->Compute(msg, &a);
  chunked->Begin();
  size_t step = size > 0 ? 1 + data[0] % 17 : 1;
  for (size_t pos = 0; pos < size; pos += step) chunked->Feed(msg.substr(pos, step));
  chunked->Finish(&b);
  const bool same_digest = a.digest_lo == b.digest_lo && a.digest_hi == b.digest_hi;
  if (!same_digest || a.tokens != b.tokens) __builtin_trap();
  if (a.tokens > 0 && sluice::Fingerprint::Similarity(a, b) != 1.0) __builtin_trap();
  static const bool wide = sluice::BodyNormalizer::UseWideVectors(true);
  if (wide) {  // a and b were computed with AVX-512: again with SSE2
    sluice::BodyNormalizer::UseWideVectors(false);
    sluice::Fingerprint c;
    whole->Compute(msg, &c);
    sluice::BodyNormalizer::UseWideVectors(true);
    if (c.digest_lo != a.digest_lo || c.digest_hi != a.digest_hi || c.tokens != a.tokens) {
      __builtin_trap();
    }
    if (a.tokens > 0 && sluice::Fingerprint::Similarity(a, c) != 1.0) __builtin_trap();
  }
  return 0;
}
