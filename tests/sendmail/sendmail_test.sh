#!/usr/bin/env bash
# Integration test: sluice-milter in a real Sendmail 8.17 (Debian's
# sendmail-bin, unpacked from its .deb by scripts/setup.sh since it
# conflicts with Postfix), with a private .cf built by m4 from Debian's
# sendmail-cf (INPUT_MAIL_FILTER, Sendmail's own macro lists), a private
# queue, on a high port of 127.0.0.1; messages stay queued (queueonly).
# Shows: the mailbox limit refuses the recipient over it at RCPT (451 with
# sluice's text) and counts exactly; the X-PHP-Originating-Script header
# trips the script level at end of data; a body link on a domain list
# (real rbldnsd) is refused; Sendmail's queue id (macro i, known at MAIL in
# Sendmail) names the message in sluice's log, and Sendmail's SMTP mail is
# not mistaken for Postfix's local submission.
set -uo pipefail

RUNFILES="${TEST_SRCDIR:-$PWD}/${TEST_WORKSPACE:-sluice}"
MILTER="$RUNFILES/bindings/milter/sluice-milter"
SL_CLI="$RUNFILES/bindings/cli/sluice"
source "$RUNFILES/tests/postfix/env.sh"
ROOT="${SLUICE_SENDMAIL_ROOT:-${HOME:-/root}/.cache/sluice-sendmail}/root"
SENDMAIL="$ROOT/usr/libexec/sendmail/sendmail"
CF="$ROOT/usr/share/sendmail/cf"

if [[ $(id -u) -ne 0 ]] || [[ ! -x "$SENDMAIL" ]] || ! command -v m4 >/dev/null ||
  ! command -v swaks >/dev/null || ! command -v rbldnsd >/dev/null; then
  echo "needs root, m4, swaks, rbldnsd and sendmail-bin unpacked (scripts/setup.sh)" >&2
  exit 1
fi

W="$(mktemp -d /tmp/sluice-sendmail.XXXXXX)"
chmod 0755 "$W"
SL_ADMIN="$W/admin.sock"
SMTP_PORT=$(sl_free_port)
MILTER_PORT=$(sl_free_port)
MILTER_PID=""
stop() {  # PID
  [[ -n "$1" ]] || return 0
  kill "$1" 2>/dev/null
  for ((i = 0; i < 100; i++)); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null
}
cleanup() {
  [[ -f "$W/sendmail.pid" ]] && stop "$(head -1 "$W/sendmail.pid")"
  stop "$MILTER_PID"
  sl_rbldnsd_stop
  rm -rf "$W"
}
trap cleanup EXIT

mkdir -p "$W/queue"
chmod 0700 "$W/queue"
sl_rbldnsd_start "$W/zones" dbl.bl.test dnset "127.0.1.2:Listed domain" spam-example.test
DNS_PORT=$SL_DNS_PORT

cat >"$W/sluice.conf" <<CONF
level { name: "mailbox" limit { window: "1h" max: 2 } }
level { name: "script" limit { window: "1h" max: 1 } }
policy { trusted_network: "127.0.0.0/8" }
reputation {
  nameserver: "127.0.0.1"
  port: $DNS_PORT
  list { zone: "dbl.bl.test" kind: SPAMHAUS_DBL check: BODY_URLS outgoing: true }
}
CONF
"$MILTER" --config "$W/sluice.conf" --milter "inet:$MILTER_PORT@127.0.0.1" --admin-socket "$SL_ADMIN" \
  --table "$W/counters.table" >"$W/milter.log" 2>&1 &
MILTER_PID=$!
sl_wait_port "$MILTER_PORT" 15 || { cat "$W/milter.log"; exit 1; }

# The .cf: Debian's m4 files, a private queue, the milter and the macros
# sluice asks for.
cat >"$W/test.mc" <<MC
divert(-1)
divert(0)dnl
OSTYPE(\`linux')dnl
define(\`confDONT_PROBE_INTERFACES', \`True')dnl
define(\`QUEUE_DIR', \`$W/queue')dnl
define(\`confPID_FILE', \`$W/sendmail.pid')dnl
define(\`STATUS_FILE', \`$W/statistics')dnl
define(\`ALIAS_FILE', \`')dnl
define(\`confDELIVERY_MODE', \`queueonly')dnl
define(\`confREFUSE_LA', \`100')dnl
define(\`confQUEUE_LA', \`100')dnl
define(\`confTO_IDENT', \`0s')dnl
define(\`confMILTER_MACROS_CONNECT', \`j, _, {daemon_name}, {daemon_port}, {client_addr}, {client_name}, v')dnl
define(\`confMILTER_MACROS_ENVFROM', \`i, {auth_type}, {auth_authen}, {mail_addr}')dnl
define(\`confMILTER_MACROS_EOM', \`i')dnl
DAEMON_OPTIONS(\`Port=$SMTP_PORT, Addr=127.0.0.1, Name=MTA')dnl
INPUT_MAIL_FILTER(\`sluice', \`S=inet:$MILTER_PORT@127.0.0.1, F=T, T=S:10s;R:10s;E:30s')dnl
FEATURE(\`promiscuous_relay')dnl
FEATURE(\`accept_unresolvable_domains')dnl
MAILER(\`smtp')dnl
MC
m4 -D_CF_DIR_="$CF/" "$CF/m4/cf.m4" "$W/test.mc" >"$W/test.cf" 2>"$W/m4.log" ||
  { cat "$W/m4.log"; exit 1; }
"$SENDMAIL" -C "$W/test.cf" -bd -L sluice-sendmail-test >"$W/sendmail.out" 2>&1
sl_wait_port "$SMTP_PORT" 15 || { cat "$W/sendmail.out"; exit 1; }

send() {  # FROM TO [swaks options]: the refusal or "queued"
  local out refusal
  out=$(timeout 60 swaks --server "127.0.0.1:$SMTP_PORT" --from "$1" --to "$2" --helo c.example \
    --timeout 30 "${@:3}" 2>&1)
  refusal=$(grep -E '^<\*\* +[45][0-9]{2}' <<<"$out" | head -1 | sed -E 's/^<\*\* +//')
  if [[ -n "$refusal" ]]; then echo "$refusal"; else grep -qE '^<- +250 2\.0\.0 .* Message accepted' <<<"$out" && echo queued; fi
}
words() { echo "notes $1 about the $RANDOM meeting in the garden on a $RANDOM friday"; }

check "1st message queued" "queued" "$(send a@acme.example r1@remote.example --body "$(words 1)")"
check "2nd message queued" "queued" "$(send a@acme.example r2@remote.example --body "$(words 2)")"
r=$(send a@acme.example r3@remote.example --body "$(words 3)")
check "3rd refused at RCPT" "451 4.7.1" "$r"
check "with sluice's text" "mailbox messages limit 2/1h exceeded" "$r"
check_eq "counted exactly" "2" "$(sl_usage a@acme.example messages)"
check "the script's 1st message queued" "queued" \
  "$(send b@acme.example s1@remote.example --add-header 'X-PHP-Originating-Script: 33:form.php' --body "$(words 4)")"
r=$(send c@acme.example s2@remote.example --add-header 'X-PHP-Originating-Script: 33:form.php' --body "$(words 5)")
check "the script's 2nd refused at end of data" "451 4.7.1" "$r"
check "names the script level" "script messages limit 1/1h" "$r"
r=$(send d@acme.example u@remote.example --body "Deals at http://www.spam-example.test/now for you")
check "a listed body link refused" "554 5.7.1" "$r"
check "sluice's log names Sendmail's queue id" "yes" \
  "$(grep -qE ' [0-9A-Za-z]{14}: sluice: defer' "$W/milter.log" && echo yes)"
check "Sendmail's SMTP mail is not local submission" "direction_by=trusted_network" \
  "$(grep 'level=script' "$W/milter.log")"
check "the queue holds the accepted messages" "3" "$(find "$W/queue" -name 'qf*' | wc -l | tr -d ' ')"

echo "$SL_FAILURES failure(s)"
[[ $SL_FAILURES -eq 0 ]]
