#!/usr/bin/env bash
# The demonstration must show the compromised mailbox and the script being
# stopped at their limits while ordinary mailboxes are not deferred.
set -euo pipefail
sim="$(dirname "$0")/sluice_simulate"
[[ -x "$sim" ]] || sim="bindings/cli/sluice_simulate"
out="$("$sim" --minutes 60 --mailboxes 2000)"
# No pipes from "$out" into a reader that stops early: under pipefail the
# writer's SIGPIPE would fail the test at random.
head -5 <<<"$out"
fail() { echo "FAIL: $*"; echo "$out"; exit 1; }
grep -q "TRIP defer mailbox info@bakery.example: recipients 300/1h" <<<"$out" || fail "compromised mailbox did not trip"
grep -q "TRIP defer script /var/www/vhosts/acme.example" <<<"$out" || fail "script did not trip"
grep -q "ordinary mailboxes deferred: 0;" <<<"$out" || fail "ordinary mailboxes were deferred"
# The mailbox recipients limit (300/h, 25 recipients a message) caps it at 12.
admitted=$(awk '$1 ~ /^[0-9]+$/ && $1 >= 20 { split($4, a, "/"); s += a[1] } END { print s }' <<<"$out")
[[ "$admitted" -eq 12 ]] || fail "compromised mailbox admitted $admitted, want 12"
# Bad arguments are refused.
if "$sim" --minutes 0 2>/dev/null; then fail "accepted --minutes 0"; fi
grep -q "top mailbox by messages" <<<"$out" || fail "no top report"
echo PASS
