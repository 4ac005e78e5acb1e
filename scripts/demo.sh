#!/usr/bin/env bash
# The main job: a private Postfix on 127.0.0.1 with one sluice daemon as
# both its policy service and its milter (smtpd_milters for SMTP,
# non_smtpd_milters for sendmail(1)), on the embedded default config (a
# shared hosting server) plus a SURBL-like list served by a local rbldnsd,
# and smtp-sink behind. Plays ordinary senders of several subscriptions,
# a compromised mailbox, a mailbox sending near-identical letters, a hacked
# web script mailing through sendmail(1) and a message with a listed link;
# prints what Postfix accepted, deferred and held, which rule tripped (in
# sluice's log and in Postfix's), sluice's top reports, and writes the report
# page to /tmp/sluice-demo-report.html; then stops
# everything it started.
# Usage: scripts/demo.sh BINDIR [--keep]   (BINDIR holds the daemon and sluice)
set -uo pipefail
BIN="$1"
here="$(cd "$(dirname "$0")/.." && pwd)"
export SL_POLICYD="$BIN/bindings/milter/sluice-milter"
CLI="$BIN/bindings/cli/sluice"
source "$here/tests/postfix/env.sh"

WORK="$(mktemp -d /tmp/sluice-demo.XXXXXX)"
sl_env_init "$WORK"
MILTER_PORT=$(sl_free_port)
cleanup() {
  sl_postfix_stop
  sl_policyd_stop
  sl_rbldnsd_stop
  rm -rf "$SL_RUN"
  [[ "${2:-}" == --keep ]] || rm -rf "$WORK"
}
trap cleanup EXIT

# A SURBL-like domain list: one spammer's domain.
sl_rbldnsd_start "$WORK/zones" surbl.bl.test dnset "127.0.0.2:Listed by the demo's SURBL-like list" \
  cheap-pills.test
DNS_PORT=$SL_DNS_PORT

# The embedded default, and the list for the links in what users send.
{
  "$CLI" default-config
  cat <<CONF
reputation {
  nameserver: "127.0.0.1"
  port: $DNS_PORT
  list { zone: "surbl.bl.test" kind: SURBL check: BODY_URLS outgoing: true }
}
CONF
} >"$WORK/sluice.conf"

SL_POLICYD_EXTRA=(--milter "inet:$MILTER_PORT@127.0.0.1")
sl_policyd_start "$WORK/sluice.conf" || exit 1
sl_wait_port "$MILTER_PORT" 10 || exit 1
sl_milter_postconf "$MILTER_PORT"
sl_postfix_start || { cat "$WORK/postfix.log"; exit 1; }
echo "sluice demo: $(postconf -d mail_version | sed 's/mail_version = /Postfix /') on 127.0.0.1:$SL_SMTP_PORT;" \
  "one sluice daemon as its policy service (127.0.0.1:$SL_POLICY_PORT) and milter" \
  "(127.0.0.1:$MILTER_PORT), embedded default config + a SURBL-like list (rbldnsd);" \
  "smtp-sink behind"
echo

# send SENDER MESSAGES RECIPIENTS BATCH [random|letter|link]: SMTP sessions
# of BATCH messages each. Bodies: random words (real mail differs), one
# letter with the recipient's name changed (near-duplicates), or a text with
# a listed link. Prints the first refusal, if any.
send() {
  timeout 300 python3 - "$SL_SMTP_PORT" "$@" <<'PY'
import random, smtplib, sys
port, sender, n, rcpts, batch = int(sys.argv[1]), sys.argv[2], *map(int, sys.argv[3:6])
kind = sys.argv[6] if len(sys.argv) > 6 else "random"
rng = random.Random(sender)  # the same demo every run
words = ("account april budget client delivery estimate friday garden holiday invoice "
         "journey kitchen lunch meeting notes office project quarter report schedule "
         "summer team travel update visit weekend").split()
names = "Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Karl Laura Mike Nina".split()
def body(i):
    if kind == "letter":
        return (f"Dear {names[i % len(names)]},\n\nyour parcel is waiting at the depot near the "
                "station. Bring this letter and an ID to collect it before Friday.\n\nKind "
                "regards,\nthe parcel service of the town\n")
    if kind == "link":
        return "Great deals today at http://www.cheap-pills.test/buy - do not miss them.\n"
    # Ordinary mail: a few everyday words among many of each message's own
    # (made of syllables), as real letters differ in most of their words.
    syl = ["ba", "ko", "ri", "sen", "ta", "lu", "mer", "den", "fi", "gor", "pa", "vel", "nu", "stra"]
    def word():
        if rng.random() < 0.3:
            return rng.choice(words)
        return "".join(rng.choice(syl) for _ in range(rng.randint(2, 4)))
    return " ".join(word() for _ in range(rng.randint(20, 400))) + "\n"
sent = 0
while sent < n:
    s = smtplib.SMTP("127.0.0.1", port, timeout=60)
    s.ehlo("client.example")
    for _ in range(min(batch, n - sent)):
        to = [f"r{sent}-{j}@remote.example" for j in range(rcpts)]
        msg = f"From: {sender}\nSubject: message {sent}\n\n{body(sent)}"
        try:
            refused = s.sendmail(sender, to, msg)
            if refused:
                code, text = next(iter(refused.values()))
                print(f"{code} {text.decode()}")
                sys.exit(0)
        except smtplib.SMTPRecipientsRefused as e:
            code, text = next(iter(e.recipients.values()))
            print(f"{code} {text.decode()}")
            sys.exit(0)
        except smtplib.SMTPResponseException as e:
            print(f"{e.smtp_code} {e.smtp_error.decode()}")
            sys.exit(0)
        sent += 1
    s.quit()
PY
}

# php_mail SENDER SCRIPT N: what PHP's mail() does, N times: sendmail(1)
# with the X-PHP-Originating-Script header PHP adds. The texts differ (a
# spammer's script varies them), so it is the script's limit that stops it.
php_mail() {
  local i
  for ((i = 0; i < $3; i++)); do
    python3 -c 'import random, sys
i = int(sys.argv[3]); rng = random.Random(i)
words = "best deal offer price order today cheap watch free bonus gift card prize win".split()
print(f"From: {sys.argv[1]}\nTo: lead{i}@remote.example\nSubject: Your order {i}\n"
      f"X-PHP-Originating-Script: {sys.argv[2]}\n")
print(" ".join(rng.choice(words) + str(rng.randint(0, 9) * 0) for _ in range(rng.randint(10, 600))))' \
      "$1" "$2" "$i" | timeout 30 sendmail -C "$SL_PF" -f "$1" -t
  done
}

accepted() {  # SENDER: messages Postfix queued from it
  grep -c "from=<$1>, size=.*(queue active)" "$WORK/maillog" 2>/dev/null
}
held() {  # SENDER: messages Postfix put on hold
  grep -c "milter-hold: END-OF-MESSAGE.*from=<$1>" "$WORK/maillog" 2>/dev/null
}
row() {
  printf '  %-32s %5s msgs x %-3s rcpt   accepted %5s   %s\n' "$1" "$2" "$3" "$(accepted "$1")" "$4"
}

declare -a ORD=("alice@acme.example 40 1" "bob@acme.example 25 3" "sales@acme-shop.example 30 1"
  "newsletter@acme.example 120 2" "anna@bakery.example 15 2" "orders@bakery.example 20 1"
  "carl@consult.example 35 1" "desk@consult.example 10 4")
declare -a ORD_RESULT
for i in "${!ORD[@]}"; do
  read -r who n r <<<"${ORD[$i]}"
  ORD_RESULT[$i]="$(send "$who" "$n" "$r" 5)"
done
comp="$(send info@bakery.example 200 25 10)"
burst="$(send office@consult.example 40 1 5 letter)"
php_mail wordpress@acme-shop.example "33:wp-content/plugins/contact/mailer.php" 80
for ((i = 0; i < 100; i++)); do  # pickup and the queue manager log the last ones
  [[ $(($(accepted wordpress@acme-shop.example) + $(held wordpress@acme-shop.example))) -ge 80 ]] && break
  sleep 0.1
done
script_accepted=$(accepted wordpress@acme-shop.example)
own="$(send wordpress@acme-shop.example 10 1 5)"
link="$(send alice@acme.example 1 1 1 link)"
sleep 1

echo "-- ordinary senders (several subscriptions and plans)"
for i in "${!ORD[@]}"; do
  read -r who n r <<<"${ORD[$i]}"
  row "$who" "$n" "$r" "${ORD_RESULT[$i]:-ok}"
done
echo
echo "-- a compromised mailbox: info@bakery.example (starter plan), 200 messages of 25 recipients"
row info@bakery.example 200 25 ""
echo "     Postfix said: ${comp:-nothing refused}"
echo "-- near-identical letters, under every count limit: office@consult.example"
row office@consult.example 40 1 ""
echo "     Postfix said: ${burst:-nothing refused}"
echo "-- a hacked web script on acme-shop.example: PHP's mail() -> sendmail(1), 80 messages"
echo "     accepted $script_accepted, held $(held wordpress@acme-shop.example)" \
  "(Postfix's hold queue: postqueue -p shows them with '!')"
echo "-- the same mailbox's own mail over SMTP afterwards, 10 messages: ${own:-all accepted}"
echo "-- a message with a listed link (alice@acme.example): ${link:-accepted}"
echo
echo "-- what tripped (sluice's log, the first line of each rule)"
grep -E "sluice: (defer|reject|hold|discard|shadow)" "$WORK/policyd.log" |
  sed -E 's/^.*sluice-milter\[[0-9]+\]: //' |
  awk '{ key = $0; sub(/ entity=.*| key=.*/, "", key); sub(/^[^ ]+: /, "", key);
         if (!seen[key]++ && shown++ < 10) print "  " $0 }'
echo
echo "-- what Postfix logged (the first of each)"
grep -E "milter-(reject|hold)" "$WORK/maillog" | sed -E 's/^.*(postfix\/[a-z]+)\[[0-9]+\]: /\1: /' |
  awk '{ key = $0; sub(/from=.*/, "", key); gsub(/[0-9A-F]{8,}: /, "", key); gsub(/[0-9]+/, "N", key);
         if (!seen[key]++ && shown++ < 6) print "  " $0 }'
echo
echo "-- sluice top script (messages, 1h)"
"$CLI" --socket "$SL_ADMIN" top script messages 1h 5 | sed 's/^/  /'
echo
echo "-- sluice top mailbox (messages, 1h)"
"$CLI" --socket "$SL_ADMIN" top mailbox messages 1h 10 | sed 's/^/  /'
echo
echo "-- sluice top subscription"
"$CLI" --socket "$SL_ADMIN" top subscription messages 1h 5 | sed 's/^/  /'
echo
echo "delivered to the sink: $(sl_sink_count 1) messages; queued by Postfix: $(grep -c '(queue active)' "$WORK/maillog")"
echo
# The report page of this run (what the daemon remembers), kept after the
# run: open it in any browser, offline.
page="/tmp/sluice-demo-report.html"
if "$CLI" --socket "$SL_ADMIN" report -o "$page" 2>/dev/null; then
  echo "-- the report page of this run: $page (sluice report; open it in a browser)"
fi
