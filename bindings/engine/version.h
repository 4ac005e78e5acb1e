// sluice's version, for the programs' --version and the library. One
// place: the C ABI's SLUICE_VERSION_* macros (bindings/c/sluice.h) must
// agree, which bindings/c/sluice_c.cc checks at compile time.
//
// Thread safety: constants.
#ifndef SLUICE_BINDINGS_ENGINE_VERSION_H_
#define SLUICE_BINDINGS_ENGINE_VERSION_H_

namespace sluice {

inline constexpr int kVersionMajor = 0;
inline constexpr int kVersionMinor = 1;
inline constexpr int kVersionPatch = 0;
inline constexpr char kVersionString[] = "0.1.0";

}  // namespace sluice

#endif  // SLUICE_BINDINGS_ENGINE_VERSION_H_
