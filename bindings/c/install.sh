#!/usr/bin/env bash
# Installs the C ABI under a prefix: include/sluice.h, lib/libsluice.so.0
# (+ the libsluice.so link for -lsluice), lib/pkgconfig/sluice.pc.
#   bash bindings/c/install.sh PREFIX            (from the repository: builds first)
#   install.sh PREFIX HEADER LIBRARY PC_TEMPLATE  (files given: tests)
set -euo pipefail
prefix="${1:?usage: install.sh PREFIX}"
if [[ $# -ge 4 ]]; then
  header="$2" lib="$3" pc="$4"
else
  cd "$(dirname "$0")/../.."
  bazel build --config=opt //bindings/c:libsluice.so.0 >/dev/null
  bin="$(bazel info --config=opt bazel-bin 2>/dev/null)"
  header=bindings/c/sluice.h lib="$bin/bindings/c/libsluice.so.0" pc=bindings/c/sluice.pc.in
fi
version=$(awk '/#define SLUICE_VERSION_(MAJOR|MINOR|PATCH) / { v = v (v ? "." : "") $3 } END { print v }' "$header")
mkdir -p "$prefix/include" "$prefix/lib/pkgconfig"
install -m 0644 "$header" "$prefix/include/sluice.h"
install -m 0755 "$lib" "$prefix/lib/libsluice.so.0"
ln -sf libsluice.so.0 "$prefix/lib/libsluice.so"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" "$pc" >"$prefix/lib/pkgconfig/sluice.pc"
echo "installed sluice $version under $prefix"
