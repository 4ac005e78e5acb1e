#!/usr/bin/env bash
# Runs the demo (scripts/demo.sh) as README's run command does and checks
# what it must show: the compromised mailbox stopped at its recipients limit
# (300 = 12 messages of 25), the hacked script at its mailbox limit (100),
# no ordinary sender refused, and the top report listing them.
set -uo pipefail
RUNFILES="${TEST_SRCDIR:-$PWD}/${TEST_WORKSPACE:-sluice}"
bin="$RUNFILES"
[[ -x "$bin/bindings/postfix/sluice-policyd" ]] || { echo "no sluice-policyd in $bin"; exit 1; }
out=$(bash "$RUNFILES/scripts/demo.sh" "$bin" 2>&1)
echo "$out"
fail=0
expect() {
  if ! grep -qF -- "$1" <<<"$out"; then
    echo "FAIL: missing [$1]"
    fail=1
  fi
}
expect "info@bakery.example                200 msgs x 25  rcpt   accepted    12"
expect "mailbox recipients limit 300/1h exceeded (info@bakery.example)"
expect "wordpress@acme-shop.example        400 msgs x 1   rcpt   accepted   100"
expect "mailbox messages limit 100/1h exceeded (wordpress@acme-shop.example)"
expect "refusals in total: 2"
ordinary_refused=$(grep -E '^  [a-z]+@' <<<"$out" | grep -E 'rcpt   accepted' | grep -vE 'info@|wordpress@' | grep -vc ' ok$')
if [[ "$ordinary_refused" -ne 0 ]]; then
  echo "FAIL: $ordinary_refused ordinary sender(s) refused"
  fail=1
fi
exit $fail
