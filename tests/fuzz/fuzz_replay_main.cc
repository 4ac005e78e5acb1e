// Runs a libFuzzer target without libFuzzer, inside the normal test suite:
// every file of the seed corpus, then a bounded number of deterministic
// random mutations of them (byte flips, inserts, truncations, splices).
#include <dirent.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  std::vector<std::string> corpus;
  for (int i = 1; i < argc; ++i) {
    std::string dir = argv[i];
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) {
      std::fprintf(stderr, "cannot open corpus %s\n", dir.c_str());
      return 2;
    }
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::ifstream f(dir + "/" + e->d_name, std::ios::binary);
      std::stringstream ss;
      ss << f.rdbuf();
      corpus.push_back(ss.str());
    }
    closedir(d);
  }
  if (corpus.empty()) {
    std::fprintf(stderr, "empty corpus\n");
    return 2;
  }
  for (const auto& c : corpus) {
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(c.data()), c.size());
  }
  std::mt19937_64 rng(1);
  const int kRuns = 20000;
  for (int run = 0; run < kRuns; ++run) {
    std::string s = corpus[rng() % corpus.size()];
    int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) {
      size_t pos = s.empty() ? 0 : rng() % s.size();
      switch (rng() % 5) {
        case 0:
          if (!s.empty()) s[pos] = static_cast<char>(rng());
          break;
        case 1:
          s.insert(pos, 1, "{}\":#-0123456789abcdefghijklmnopqrstuvwxyz \n\\\0"[rng() % 47]);
          break;
        case 2:
          s.resize(pos);
          break;
        case 3: {
          const std::string& o = corpus[rng() % corpus.size()];
          size_t from = o.empty() ? 0 : rng() % o.size();
          s.insert(pos, o.substr(from, rng() % 64));
          break;
        }
        case 4:
          if (!s.empty()) s.erase(pos, rng() % 16);
          break;
      }
    }
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  }
  std::printf("replayed %zu corpus files and %d mutations\n", corpus.size(), kRuns);
  return 0;
}
