#!/usr/bin/env bash
# Installs sluice's programs and their man pages under a prefix, and the C
# ABI (bindings/c/install.sh):
#   PREFIX/bin/sluice, PREFIX/sbin/sluice-policyd, PREFIX/sbin/sluice-milter,
#   PREFIX/share/man/man1/sluice.1, PREFIX/share/man/man8/sluice-policyd.8,
#   PREFIX/share/man/man8/sluice-milter.8, and include/, lib/ of the C ABI.
#   bash scripts/install.sh PREFIX        (from the repository: builds first)
#   install.sh PREFIX SLUICE POLICYD MILTER MAN...  (files given, no C ABI: tests)
set -euo pipefail
prefix="${1:?usage: install.sh PREFIX}"
if [[ $# -ge 5 ]]; then
  sluice="$2" policyd="$3" milter="$4"
  shift 4
  man=("$@")
  c_abi=0
else
  cd "$(dirname "$0")/.."
  bazel build --config=opt //bindings/cli:sluice //bindings/postfix:sluice-policyd \
    //bindings/milter:sluice-milter >/dev/null
  bin="$(bazel info --config=opt bazel-bin 2>/dev/null)"
  sluice="$bin/bindings/cli/sluice" policyd="$bin/bindings/postfix/sluice-policyd"
  milter="$bin/bindings/milter/sluice-milter"
  man=(bindings/cli/sluice.1 bindings/postfix/sluice-policyd.8 bindings/milter/sluice-milter.8)
  c_abi=1
fi
mkdir -p "$prefix/bin" "$prefix/sbin" "$prefix/share/man/man1" "$prefix/share/man/man8"
install -m 0755 "$sluice" "$prefix/bin/sluice"
install -m 0755 "$policyd" "$prefix/sbin/sluice-policyd"
install -m 0755 "$milter" "$prefix/sbin/sluice-milter"
for m in "${man[@]}"; do
  section="${m##*.}"
  install -m 0644 "$m" "$prefix/share/man/man$section/$(basename "$m")"
done
if ((c_abi)); then bash bindings/c/install.sh "$prefix"; fi
echo "installed sluice's programs and man pages under $prefix"
