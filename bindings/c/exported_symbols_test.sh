#!/usr/bin/env bash
# libsluice.so.0 exports exactly the documented sluice_* functions: the
# committed list (exported_symbols.txt). A new function is added to both;
# a symbol that leaks (a C++ one, a dependency's) fails here.
set -euo pipefail
RUNFILES="${TEST_SRCDIR:-$PWD}/${TEST_WORKSPACE:-sluice}"
lib="$RUNFILES/bindings/c/libsluice.so.0"
want="$RUNFILES/bindings/c/exported_symbols.txt"
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ "$soname" == libsluice.so.0 ]] || { echo "soname is [$soname], not libsluice.so.0"; exit 1; }
got=$(nm -D --defined-only "$lib" | awk '$3 != "SLUICE_0" { sub(/@@.*/, "", $3); print $3 }' | sort)
if ! diff <(echo "$got") "$want"; then
  echo "the exported symbols differ from exported_symbols.txt (< built, > committed)"
  exit 1
fi
undocumented=$(comm -23 <(echo "$got") <(grep -o 'sluice_[a-z_]*(' "$RUNFILES/bindings/c/sluice.h" | tr -d '(' | sort -u) || true)
[[ -z "$undocumented" ]] || { echo "exported but not in sluice.h: $undocumented"; exit 1; }
echo "ok: soname $soname, $(wc -l <"$want") symbols, all sluice_* and in sluice.h"
