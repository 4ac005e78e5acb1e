#!/usr/bin/env bash
# Runs the demo (scripts/demo.sh) as README's run command does and checks
# what it must show, through the policy service and the milter of one
# daemon: the compromised mailbox stopped at its recipients limit (300 = 12
# messages of 25); near-identical letters stopped by the burst detector
# under every count limit (9 of 40); the hacked web script's sendmail(1)
# mail held at the script level (50 of 80) while the mailbox's own SMTP
# mail flows; a listed link refused at end of message; no ordinary sender
# refused; sluice's and Postfix's log lines and the top reports.
set -uo pipefail
RUNFILES="${TEST_SRCDIR:-$PWD}/${TEST_WORKSPACE:-sluice}"
bin="$RUNFILES"
[[ -x "$bin/bindings/milter/sluice-milter" ]] || { echo "no sluice-milter in $bin"; exit 1; }
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
expect "451 4.7.1 sluice: mailbox recipients limit 300/1h exceeded (info@bakery.example)"
expect "office@consult.example              40 msgs x 1   rcpt   accepted     9"
expect "451 4.7.1 sluice: too many copies of the same message"
expect "accepted 50, held 30"
expect "the same mailbox's own mail over SMTP afterwards, 10 messages: all accepted"
expect "554 5.7.1 sluice: message contains a URL listed by surbl.bl.test"
expect "rule=limit level=script entity=<33:wp-content/plugins/contact/mailer.php>"
expect "rule=near_duplicate key=<office@consult.example>"
expect "milter-hold: END-OF-MESSAGE"
expect "milter-reject: RCPT from"
expect "33:wp-content/plugins/contact/mailer.php         50         50   100%"
ordinary_refused=$(grep -E '^  [a-z]+@' <<<"$out" | grep -E 'rcpt   accepted' |
  grep -vE 'info@|office@' | grep -vc ' ok$')
if [[ "$ordinary_refused" -ne 0 ]]; then
  echo "FAIL: $ordinary_refused ordinary sender(s) refused"
  fail=1
fi
exit $fail
