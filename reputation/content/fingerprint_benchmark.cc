// Fingerprinting throughput (bytes/s per core) on synthetic plain, HTML and
// base64 messages, and the cost of one MinHash comparison. The corpus
// benchmark with peers (ssdeep, TLSH) is benchmarks/ material (issue 3).
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "reputation/content/fingerprint.h"

namespace sluice {
namespace {

std::string Words(size_t bytes, uint32_t seed) {
  static const char* kWords[] = {"offer",    "limited", "exclusive", "customers", "today",
                                 "shipping", "account", "verify",    "discount",  "watches",
                                 "pharmacy", "quality", "special",   "members",   "click"};
  std::mt19937 rng(seed);
  std::string s;
  int col = 0;
  while (s.size() < bytes) {
    const char* w = kWords[rng() % 15];
    s += w;
    col += static_cast<int>(strlen(w)) + 1;
    if (col > 70) {
      s += "\n";
      col = 0;
    } else {
      s += (rng() % 9 == 0) ? ", " : " ";
    }
  }
  return s;
}

std::string PlainMessage() { return "Subject: x\n\n" + Words(8000, 1); }

std::string HtmlMessage() {
  std::string body = "Content-Type: text/html\n\n<html><body>";
  std::mt19937 rng(2);
  for (int i = 0; i < 120; ++i) {
    absl::StrAppend(&body, "<p style=\"font-size:12px\">", Words(60, i),
                    " <a href=\"https://shop.example/item/", rng() % 1000,
                    "\">&nbsp;here</a></p>\n");
  }
  return body + "</body></html>\n";
}

std::string Base64Message() {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string text = Words(6000, 3), b64;
  for (size_t i = 0; i + 2 < text.size(); i += 3) {
    uint32_t v = (uint8_t(text[i]) << 16) | (uint8_t(text[i + 1]) << 8) | uint8_t(text[i + 2]);
    for (int s = 18; s >= 0; s -= 6) b64 += kAlphabet[(v >> s) & 63];
    if (b64.size() % 77 == 76) b64 += "\n";
  }
  return "Content-Transfer-Encoding: base64\n\n" + b64 + "\n";
}

void Run(benchmark::State& state, const std::string& m) {
  Fingerprinter f;
  Fingerprint fp;
  for (auto _ : state) {
    f.Compute(m, &fp);
    benchmark::DoNotOptimize(fp.digest_lo);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * m.size()));
}

void BM_FingerprintPlain(benchmark::State& state) { Run(state, PlainMessage()); }
void BM_FingerprintHtml(benchmark::State& state) { Run(state, HtmlMessage()); }
void BM_FingerprintBase64(benchmark::State& state) { Run(state, Base64Message()); }
BENCHMARK(BM_FingerprintPlain);
BENCHMARK(BM_FingerprintHtml);
BENCHMARK(BM_FingerprintBase64);

void BM_MinHashCompare(benchmark::State& state) {
  Fingerprinter f;
  Fingerprint a, b;
  f.Compute(PlainMessage(), &a);
  f.Compute("Subject: y\n\n" + Words(8000, 7), &b);
  for (auto _ : state) {
    double s = Fingerprint::Similarity(a, b);
    benchmark::DoNotOptimize(s);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_MinHashCompare);

}  // namespace
}  // namespace sluice

BENCHMARK_MAIN();
