#!/usr/bin/env bash
# Every C++ source must be clang-format clean (Google style, .clang-format).
set -euo pipefail
command -v clang-format >/dev/null || { echo "clang-format not installed"; exit 1; }
files=$(find -L . -path ./external -prune -o \( -name '*.cc' -o -name '*.h' \) -print | grep -v '\.pb\.' | sort)
[[ -n "$files" ]] || { echo "no sources found"; exit 1; }
n=0; bad=0
for f in $files; do
  n=$((n + 1))
  if ! clang-format --style=file:.clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "not formatted: $f (run: clang-format -i $f)"; bad=$((bad + 1))
  fi
done
echo "$n files checked, $bad not formatted"
[[ $bad -eq 0 ]]
