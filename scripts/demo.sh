#!/usr/bin/env bash
# The main job: a private Postfix on 127.0.0.1 with sluice-policyd (embedded
# default config: a shared hosting server) as its policy service and
# smtp-sink behind it. Plays ordinary senders of several subscriptions, one
# compromised mailbox and one hacked web script through Postfix, prints what
# Postfix accepted and deferred, which level tripped, and sluice's top
# report, then stops everything it started.
# Usage: scripts/demo.sh BINDIR [--keep]   (BINDIR holds sluice-policyd and sluice)
set -uo pipefail
BIN="$1"
here="$(cd "$(dirname "$0")/.." && pwd)"
export SL_POLICYD="$BIN/bindings/postfix/sluice-policyd"
CLI="$BIN/bindings/cli/sluice"
source "$here/tests/postfix/env.sh"

WORK="$(mktemp -d /tmp/sluice-demo.XXXXXX)"
sl_env_init "$WORK"
cleanup() {
  sl_postfix_stop
  sl_policyd_stop
  rm -rf "$SL_RUN"
  [[ "${2:-}" == --keep ]] || rm -rf "$WORK"
}
trap cleanup EXIT

sl_policyd_start "" || exit 1
sl_postfix_start || { cat "$WORK/postfix.log"; exit 1; }
echo "sluice demo: $(postconf -d mail_version | sed 's/mail_version = /Postfix /') on 127.0.0.1:$SL_SMTP_PORT," \
  "sluice-policyd on 127.0.0.1:$SL_POLICY_PORT (embedded default config), smtp-sink behind"
echo

# send SENDER MESSAGES RECIPIENTS_PER_MESSAGE BATCH: smtp-source sessions of
# BATCH messages, each batch with its own random size (real mail varies;
# identical sizes are what the same-size burst detector looks for). Stops
# at the first refusal and prints it.
send() {
  local sent=0 out refusal len
  while ((sent < $2)); do
    len=$((300 + RANDOM % 30000))
    out=$(timeout 120 smtp-source -c -m "$4" -l "$len" -r "$3" -N -f "$1" -t "rcpt@remote.example" \
      -M client.example "127.0.0.1:$SL_SMTP_PORT" 2>&1)
    refusal=$(grep -m 1 -oE '[45][0-9]{2} [45]\.[0-9]+\.[0-9]+ .*' <<<"$out")
    if [[ -n "$refusal" ]]; then
      printf '%s' "$refusal"
      return
    fi
    sent=$((sent + $4))
  done
}

accepted() {  # SENDER: messages Postfix queued from it
  grep -c "from=<$1>, size=.*(queue active)" "$WORK/maillog" 2>/dev/null
}

row() {
  printf '  %-32s %5s msgs x %-3s rcpt   accepted %5s   %s\n' "$1" "$2" "$3" "$(accepted "$1")" "$4"
}

RANDOM=42  # the same demo every run
declare -a ORD=("alice@acme.example 40 1" "bob@acme.example 25 3" "sales@acme-shop.example 30 1"
  "newsletter@acme.example 120 2" "anna@bakery.example 15 2" "orders@bakery.example 20 1"
  "carl@consult.example 35 1" "desk@consult.example 10 4")
declare -a ORD_RESULT
for i in "${!ORD[@]}"; do
  read -r who n r <<<"${ORD[$i]}"
  ORD_RESULT[$i]="$(send "$who" "$n" "$r" 1)"
done
comp="$(send info@bakery.example 200 25 10)"
script="$(send wordpress@acme-shop.example 400 1 1)"
sleep 1  # let Postfix's queue manager log the last messages
echo "-- ordinary senders (several subscriptions and plans), then a compromised mailbox and a"
echo "   hacked web script start sending"

for i in "${!ORD[@]}"; do
  read -r who n r <<<"${ORD[$i]}"
  row "$who" "$n" "$r" "${ORD_RESULT[$i]:-ok}"
done
echo
echo "-- compromised mailbox: info@bakery.example (starter plan), 200 messages of 25 recipients"
row info@bakery.example 200 25 ""
echo "     Postfix said: ${comp:-nothing refused}"
echo "-- hacked web script on acme-shop.example, mailing as wordpress@acme-shop.example"
row wordpress@acme-shop.example 400 1 ""
echo "     Postfix said: ${script:-nothing refused}"
echo
echo "-- what tripped (sluice-policyd's log, one line per refusal; first of each)"
grep -E "sluice: (defer|reject|hold|discard|shadow)" "$WORK/policyd.log" |
  sed -E 's/^.*sluice-policyd\[[0-9]+\]: //' | awk '{ key = $0; sub(/usage=.*/, "", key); if (!seen[key]++ && shown++ < 10) print "  " $0 }'
echo "  refusals in total: $(grep -cE 'sluice: (defer|reject)' "$WORK/policyd.log")"
echo
echo "-- sluice top mailbox (messages, 1h)"
"$CLI" --socket "$SL_ADMIN" top mailbox messages 1h 10 | sed 's/^/  /'
echo
echo "-- sluice top subscription"
"$CLI" --socket "$SL_ADMIN" top subscription messages 1h 5 | sed 's/^/  /'
echo
echo "-- sluice explain info@bakery.example"
"$CLI" --socket "$SL_ADMIN" explain info@bakery.example | sed 's/^/  /'
echo
echo "delivered to the sink: $(sl_sink_count 1) messages; queued by Postfix: $(grep -c '(queue active)' "$WORK/maillog")"
