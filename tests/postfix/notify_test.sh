#!/usr/bin/env bash
# Integration test: notifications on trips. A real Postfix relays to
# smtp-sink; sluice-policyd (config notify) writes each trip as a JSON line,
# runs a hook with it on stdin, and mails a digest through this Postfix's
# own sendmail(1) to the administrator and to the subscription's owner (the
# contact of the tripping mailbox's subscription). The mails reach the
# sink through the real queue. A burst of trips inside the digest period
# is one more mail per recipient, sent at stop. A mail command that fails
# is logged and delays nothing.
set -uo pipefail

RUNFILES="${TEST_SRCDIR:-$PWD}/${TEST_WORKSPACE:-sluice}"
export SL_POLICYD="$RUNFILES/bindings/postfix/sluice-policyd"
source "$RUNFILES/tests/postfix/env.sh"
sl_test_begin postfix-notify

cat >"$WORK/hook.sh" <<HOOK
#!/bin/sh
cat >> "$WORK/hook.out"
HOOK
chmod 0755 "$WORK/hook.sh"
cat >"$WORK/sluice.conf" <<CONF
level { name: "subscription" }
level { name: "domain" }
level { name: "mailbox" limit { window: "1h" max: 2 } }
entity { level: "subscription" name: "acme" contact: "owner@acme.example" }
entity { level: "domain" name: "acme.example" parent: "acme" }
notify {
  events_file: "$WORK/events.jsonl"
  exec: "$WORK/hook.sh"
  mail_to: "postmaster@hosting.example"
  mail_command: "/usr/sbin/sendmail -C $SL_PF -t -i"
  digest: "1h"
}
CONF
sl_policyd_start "$WORK/sluice.conf" || exit 1
sl_postfix_start || { cat "$WORK/postfix.log"; exit 1; }

for i in 1 2; do
  check "message $i accepted" "queued as" "$(sl_send alice@acme.example r$i@remote.example)"
done
check "the third is deferred by the mailbox limit" "mailbox messages limit 2/1h exceeded" \
  "$(sl_send alice@acme.example r3@remote.example)"
# Two test messages, then one notification for each of two recipients.
check_eq "the sink holds the 2 messages and 2 notifications" "4" "$(sl_sink_count 4)"
notes=$(grep -l 'Subject: sluice on' "$SL_SINK"/* 2>/dev/null | wc -l)
check_eq "two notification mails" "2" "$notes"
check "one to the administrator" "postmaster@hosting.example" \
  "$(grep -h '^To:' $(grep -l 'Subject: sluice on' "$SL_SINK"/*))"
check "one to the subscription's owner" "owner@acme.example" \
  "$(grep -h '^To:' $(grep -l 'Subject: sluice on' "$SL_SINK"/*))"
check "the mail says what tripped" "mailbox alice@acme.example reached its limit of 2 messages per 1h" \
  "$(cat "$SL_SINK"/*)"
check "the events file has the trip as JSON" '"entity":"alice@acme.example"' \
  "$(cat "$WORK/events.jsonl" 2>/dev/null)"
for ((i = 0; i < 50; i++)); do [[ -s "$WORK/hook.out" ]] && break; sleep 0.1; done
check "the hook got it on stdin" '"source":"limit"' "$(cat "$WORK/hook.out" 2>/dev/null)"

# A burst inside the digest period: no mail now, one per recipient at stop.
for u in bob carol dave; do
  sl_send $u@acme.example x@remote.example >/dev/null
  sl_send $u@acme.example y@remote.example >/dev/null
  sl_send $u@acme.example z@remote.example >/dev/null
done
sleep 1
check_eq "the burst waits for the digest" "2" \
  "$(grep -l 'Subject: sluice on' "$SL_SINK"/* 2>/dev/null | wc -l)"
sl_policyd_stop
for ((i = 0; i < 100; i++)); do
  [[ $(grep -l 'Subject: sluice on' "$SL_SINK"/* 2>/dev/null | wc -l) -ge 4 ]] && break
  sleep 0.1
done
check_eq "at stop, one digest per recipient" "4" \
  "$(grep -l 'Subject: sluice on' "$SL_SINK"/* 2>/dev/null | wc -l)"
check "the digest lists the burst" ": 3 trips" \
  "$(grep -h 'Subject: sluice on' "$SL_SINK"/*)"

# A mail command that fails: logged, and mail is answered as before.
sed -i "s|mail_command: .*|mail_command: \"/bin/false\"|" "$WORK/sluice.conf"
sl_policyd_start "$WORK/sluice.conf" || exit 1
sl_send erin@acme.example a@remote.example >/dev/null
sl_send erin@acme.example b@remote.example >/dev/null
check "a failing mail command delays nothing" "mailbox messages limit 2/1h exceeded" \
  "$(sl_send erin@acme.example c@remote.example)"
sl_policyd_stop
check "and is logged" "notify: mail command exited with status 1" "$(cat "$WORK/policyd.log")"

echo "---- policyd log (last lines)"
tail -5 "$WORK/policyd.log"
echo "$SL_FAILURES failure(s)"
[[ $SL_FAILURES -eq 0 ]]
