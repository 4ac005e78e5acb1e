#!/usr/bin/env bash
# Integration test: the dry-run replay agrees with the live daemon. Mail
# goes through a real Postfix with sluice-policyd in shadow mode (every
# message passes; the daemon logs what it would have done); then `sluice
# replay` plays Postfix's own log of that traffic (maillog_file) through the
# same config and must name the same senders for the same number of
# messages, by the same rule.
set -uo pipefail

RUNFILES="${TEST_SRCDIR:-$PWD}/${TEST_WORKSPACE:-sluice}"
export SL_POLICYD="$RUNFILES/bindings/postfix/sluice-policyd"
CLI="$RUNFILES/bindings/cli/sluice"
source "$RUNFILES/tests/postfix/env.sh"
sl_test_begin postfix-replay

cat >"$WORK/sluice.conf" <<'CONF'
level { name: "domain" limit { window: "1h" max: 6 shadow: true } }
level { name: "mailbox" limit { window: "1h" max: 3 shadow: true } }
CONF
sl_policyd_start "$WORK/sluice.conf" || exit 1
sl_postfix_start || { cat "$WORK/postfix.log"; exit 1; }

# alice 5 messages, bob 2, carol 4 (acme.example: 11 > 6), dan 2 elsewhere.
for s in alice alice bob alice carol alice carol bob carol alice carol; do
  check "$s's message passes (shadow)" "queued as" "$(sl_send $s@acme.example x@remote.example)"
done
for i in 1 2; do
  check "dan's message $i passes" "queued as" "$(sl_send dan@other.example y$i@remote.example)"
done
check_eq "all 13 reach the sink" "13" "$(sl_sink_count 13)"
sleep 1  # Postfix's last log lines

# What the daemon would have done: one shadow line per message that tripped.
live=$(grep -o 'sluice: shadow defer identity=<[^>]*>.* rule=limit level=[a-z]*' "$WORK/policyd.log" |
  sed -E 's/.*identity=<([^>]*)>.* level=([a-z]*)/\1 \2/' | sort)
replay=$("$CLI" replay "$WORK/sluice.conf" "$WORK/maillog")
echo "$replay" | head -20
replayed=$(grep -E '  would-defer  ' <<<"$replay" |
  sed -E 's/^[0-9-]+ [0-9:]+  [^ ]+  ([^ ]+)  would-defer  sluice: ([a-z_]+) .*/\1 \2/' | sort)
grep 'sluice: shadow' "$WORK/policyd.log"
check "the daemon tripped on something" "alice@acme.example mailbox" "$live"
check_eq "the replay names the same senders, messages and levels" "$live" "$replayed"
check "the replay counts the messages of the log" "13 messages" "$replay"
check "and suggests limits from the traffic" "suggested limits" "$replay"

echo "$SL_FAILURES failure(s)"
[[ $SL_FAILURES -eq 0 ]]
