#!/usr/bin/env bash
# The Python package's tests (pytest) and README example, on the real
# libsluice.so.0 built by Bazel, with Debian's python3 and python3-pytest.
set -euo pipefail
RUNFILES="${TEST_SRCDIR:-$PWD}/${TEST_WORKSPACE:-sluice}"
export SLUICE_LIBRARY="$RUNFILES/bindings/c/libsluice.so.0"
source "$RUNFILES/tests/postfix/env.sh"
sl_sanitizer_preload "$SLUICE_LIBRARY"
py=(env "${SL_SAN_ENV[@]}" /usr/bin/python3)
export PYTHONPATH="$RUNFILES/bindings/python"
export PYTHONDONTWRITEBYTECODE=1
"${py[@]}" -c "import pytest" 2>/dev/null || { echo "needs python3-pytest (scripts/setup.sh)"; exit 1; }
"${py[@]}" -m pytest -q -p no:cacheprovider -W error::pytest.PytestUnraisableExceptionWarning "$RUNFILES/bindings/python/sluice_test.py"
# The README example, as written.
out=$(awk '/^```python$/ { on = 1; next } /^```$/ { on = 0 } on' \
  "$RUNFILES/bindings/python/README.md" | "${py[@]}" -)
echo "$out"
grep -q "^2 False 451 sluice: mailbox messages limit 2/1h exceeded" <<<"$out"
grep -q '^2$' <<<"$out"
grep -q '^CONFIG_ERROR 1 ' <<<"$out"
echo "ok: pytest and the README example"
