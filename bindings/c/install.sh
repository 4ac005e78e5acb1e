#!/usr/bin/env bash
# Installs the C ABI under a prefix: include/sluice.h, lib/libsluice.so.0
# (+ the libsluice.so link for -lsluice), lib/libsluice.a, and
# lib/pkgconfig/sluice.pc (Libs.private: what a static link needs).
#   bash bindings/c/install.sh PREFIX     (from the repository: builds first)
#   install.sh PREFIX HEADER LIBRARY PC_TEMPLATE ARCHIVE LIBS  (files given: tests)
set -euo pipefail
prefix="${1:?usage: install.sh PREFIX}"
if [[ $# -ge 6 ]]; then
  header="$2" lib="$3" pc="$4" archive="$5" libs="$6"
else
  cd "$(dirname "$0")/../.."
  bazel build --config=opt //bindings/c:libsluice.so.0 //bindings/c:libsluice_static >/dev/null
  bin="$(bazel info --config=opt bazel-bin 2>/dev/null)"
  header=bindings/c/sluice.h lib="$bin/bindings/c/libsluice.so.0" pc=bindings/c/sluice.pc.in
  archive="$bin/bindings/c/libsluice.a" libs="$bin/bindings/c/sluice.libs"
fi
version=$(awk '/#define SLUICE_VERSION_(MAJOR|MINOR|PATCH) / { v = v (v ? "." : "") $3 } END { print v }' "$header")
mkdir -p "$prefix/include" "$prefix/lib/pkgconfig"
install -m 0644 "$header" "$prefix/include/sluice.h"
install -m 0755 "$lib" "$prefix/lib/libsluice.so.0"
ln -sf libsluice.so.0 "$prefix/lib/libsluice.so"
install -m 0644 "$archive" "$prefix/lib/libsluice.a"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" -e "s|@LIBS_PRIVATE@|$(cat "$libs")|" \
  "$pc" >"$prefix/lib/pkgconfig/sluice.pc"
echo "installed sluice $version under $prefix"
