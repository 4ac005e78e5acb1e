// libFuzzer target: the body normaliser and fingerprinter on any bytes,
// fed whole and in chunks, and (where the CPU has AVX-512) with SSE2 only;
// all ways must give the same fingerprint, bit for bit, blocks included.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "absl/strings/string_view.h"
#include "reputation/content/fingerprint.h"

namespace {

// Digest, token count, sketch, exact set and blocks (which end at
// paragraph ends too; the tail before a footer's rule line) all equal (Similarity alone would not
// see a sketch difference between two small sets).
bool Same(const sluice::Fingerprint& a, const sluice::Fingerprint& b) {
  return a.digest_lo == b.digest_lo && a.digest_hi == b.digest_hi && a.tokens == b.tokens &&
         a.k == b.k && std::memcmp(a.minhash, b.minhash, sizeof(a.minhash[0]) * a.k) == 0 &&
         a.exact == b.exact &&
         std::memcmp(a.elements, b.elements, sizeof(a.elements[0]) * a.exact) == 0 &&
         a.nblocks == b.nblocks &&
         std::memcmp(a.blocks, b.blocks, sizeof(a.blocks[0]) * a.nblocks) == 0 &&
         a.nhead == b.nhead && std::memcmp(a.head, b.head, sizeof(a.head[0]) * a.nhead) == 0 &&
         a.ntail == b.ntail && std::memcmp(a.tail, b.tail, sizeof(a.tail[0]) * a.ntail) == 0;
}

}  // namespace

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
  if (!Same(a, b)) __builtin_trap();
  if (a.tokens > 0 && sluice::Fingerprint::Similarity(a, b) != 1.0) __builtin_trap();
  static const bool wide = sluice::BodyNormalizer::UseWideVectors(true);
  if (wide) {  // a and b were computed with AVX-512: again with SSE2
    sluice::BodyNormalizer::UseWideVectors(false);
    sluice::Fingerprint c;
    whole->Compute(msg, &c);
    sluice::BodyNormalizer::UseWideVectors(true);
    if (!Same(a, c)) __builtin_trap();
  }
  return 0;
}
