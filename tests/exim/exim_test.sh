#!/usr/bin/env bash
# Integration test: sluice inside a real Exim (exim4-daemon-heavy 4.96,
# unpacked by scripts/setup.sh) through its ${dlfunc} module, and
# sluice-policyd on the same counter table. A private Exim daemon on a high
# port of 127.0.0.1, driven by swaks; `exim -t` for local submission (where
# PHP's mail() arrives). Messages stay queued (queue_only): nothing leaves.
# Shows: the mailbox limit trips at exactly its count in Exim's SMTP ACL
# (451 with sluice's text), across Exim's per-connection processes; the
# DATA ACL commits the size and the script header; exim -t with an
# X-PHP-Originating-Script header trips the script level (the submission is
# refused, exit 1, and logged); the body, read from Exim's spool, reaches
# the near-duplicate detector across Exim's processes; Exim's processes and
# sluice-policyd count on one table, exactly; a config the module cannot
# load fails open with a log line (or closed when asked).
set -uo pipefail

RUNFILES="${TEST_SRCDIR:-$PWD}/${TEST_WORKSPACE:-sluice}"
MODULE="$RUNFILES/bindings/exim/sluice_exim.so"
export SL_POLICYD="$RUNFILES/bindings/postfix/sluice-policyd"
SL_CLI="$RUNFILES/bindings/cli/sluice"
CLI="$SL_CLI"
source "$RUNFILES/tests/postfix/env.sh"
EXIM_SRC="${SLUICE_EXIM_ROOT:-${HOME:-/root}/.cache/sluice-exim}/root/usr/sbin/exim4"

if [[ $(id -u) -ne 0 ]] || [[ ! -x "$EXIM_SRC" ]] || ! id Debian-exim >/dev/null 2>&1 ||
  ! command -v swaks >/dev/null || ! command -v rbldnsd >/dev/null; then
  echo "needs root, swaks, rbldnsd, the Debian-exim user and Exim heavy unpacked (scripts/setup.sh)" >&2
  exit 1
fi

W="$(mktemp -d /tmp/sluice-exim.XXXXXX)"
chmod 0755 "$W"
sl_env_init "$W/policyd"
EXIM_PID=""
cleanup() {
  [[ -n "$EXIM_PID" ]] && kill "$EXIM_PID" 2>/dev/null
  [[ -n "$EXIM_PID" ]] && wait "$EXIM_PID" 2>/dev/null
  sl_rbldnsd_stop
  sl_policyd_stop
  rm -rf "$W" "$SL_RUN"
}
trap cleanup EXIT

mkdir -p "$W/spool" "$W/log"
chown Debian-exim:Debian-exim "$W/spool" "$W/log"
install -m 0755 "$EXIM_SRC" "$W/exim4"
install -m 0755 "$MODULE" "$W/sluice_exim.so"
# The shared table: root's, group Debian-exim, 0660 (sluice-policyd runs
# as root, Exim's processes as Debian-exim).
# The abuse detectors' tables too (bursts and session signals), so that
# every Exim process sees the same bursts.
for t in counters.table abuse.table.bursts abuse.table.signals; do
  install -m 0660 -o root -g Debian-exim /dev/null "$W/$t"
done
# A DBL-like domain list on a real rbldnsd: one spammer's domain.
sl_rbldnsd_start "$W/zones" dbl.bl.test dnset "127.0.1.2:Listed domain" spam-example.test
DNS_PORT=$SL_DNS_PORT
cat >"$W/sluice.conf" <<CONF
level { name: "mailbox" limit { window: "1h" max: 3 } limit { metric: BYTES window: "1h" max: 1000000 } }
level { name: "script" limit { window: "1h" max: 1 } }
abuse {
  near_duplicate { threshold: 2 window: "10m" }
  same_size { off: true }
  table { path: "$W/abuse.table" }
}
policy { trusted_network: "127.0.0.0/8" }
table { path: "$W/counters.table" }
reputation {
  list { zone: "dbl.bl.test" kind: SPAMHAUS_DBL check: BODY_URLS outgoing: true }
  nameserver: "127.0.0.1"
  port: $DNS_PORT
}
CONF
echo 'level { name: "mailbox" limit { window: "1q" max: 1 } }' >"$W/broken.conf"
chmod 0644 "$W/sluice.conf" "$W/broken.conf"
PORT=$(sl_free_port)
# The ACLs: sluice's module (${dlfunc}) with SLUICE-CONFIG-ARGUMENT, or
# "socket": ${readsocket} to sluice-policyd (bindings/exim/README.md).
write_exim_conf() {  # SLUICE-CONFIG-ARGUMENT | socket
  local acls
  if [[ "$1" == socket ]]; then
    local ask="\${readsocket{inet:127.0.0.1:$SL_POLICY_PORT}{request=smtpd_access_policy\\ninstance=\$acl_m_txn\\nclient_address=\$sender_host_address\\nsasl_username=\${escape:\$authenticated_id}\\nsender=\${escape:\$sender_address}"
    acls="acl_rcpt:
  warn  set acl_m_txn = \${if eq{\$acl_m_txn}{}{\$pid.\$tod_epoch_l}{\$acl_m_txn}}
        set acl_m_sluice = $ask\\nprotocol_state=RCPT\\nrecipient=\${escape:\$local_part@\$domain}\\n\\n}{5s}{ }{action=DUNNO}}
  defer condition = \${if match{\$acl_m_sluice}{\\N^action=4\\N}}
        message = \${sg{\$acl_m_sluice}{\\N^action=\\N}{}}
  deny  condition = \${if match{\$acl_m_sluice}{\\N^action=5\\N}}
        message = \${sg{\$acl_m_sluice}{\\N^action=\\N}{}}
  accept
acl_data:
  warn  set acl_m_sluice = $ask\\nprotocol_state=END-OF-MESSAGE\\nsize=\$message_size\\nrecipient_count=\$recipients_count\\nsluice_script=\${escape:\$h_X-PHP-Originating-Script:}\\n\\n}{5s}{ }{action=DUNNO}}
  defer condition = \${if match{\$acl_m_sluice}{\\N^action=4\\N}}
        message = \${sg{\$acl_m_sluice}{\\N^action=\\N}{}}
  deny  condition = \${if match{\$acl_m_sluice}{\\N^action=5\\N}}
        message = \${sg{\$acl_m_sluice}{\\N^action=\\N}{}}
  accept
acl_not_smtp:
  accept"
  else
    acls="acl_rcpt:
  warn  set acl_m_txn = \${if eq{\$acl_m_txn}{}{\$pid.\$tod_epoch_l}{\$acl_m_txn}}
        set acl_m_sluice = \${dlfunc{SLUICE}{sluice_rcpt}{SCONF}{\$acl_m_txn}{\$sender_host_address}{\$authenticated_id}{\$sender_address}{\$local_part@\$domain}}
  defer condition = \${if match{\$acl_m_sluice}{\\N^4\\N}}
        message = \$acl_m_sluice
  deny  condition = \${if match{\$acl_m_sluice}{\\N^5\\N}}
        message = \$acl_m_sluice
  accept
acl_data:
  warn  set acl_m_sluice = \${dlfunc{SLUICE}{sluice_data}{SCONF}{\$acl_m_txn}{\$sender_host_address}{\$authenticated_id}{\$sender_address}{\$message_size}{\$recipients_count}{\$h_X-PHP-Originating-Script:}}
  defer condition = \${if match{\$acl_m_sluice}{\\N^4\\N}}
        message = \$acl_m_sluice
  deny  condition = \${if match{\$acl_m_sluice}{\\N^5\\N}}
        message = \$acl_m_sluice
  accept
acl_not_smtp:
  warn  set acl_m_sluice = \${dlfunc{SLUICE}{sluice_not_smtp}{SCONF}{\$message_exim_id}{\$sender_address}{\$message_size}{\$recipients_count}{\$h_X-PHP-Originating-Script:}}
  deny  condition = \${if match{\$acl_m_sluice}{\\N^[45]\\N}}
        message = \$acl_m_sluice
  accept"
  fi
  cat >"$W/exim.conf" <<CONF
exim_path = $W/exim4
spool_directory = $W/spool
log_file_path = $W/log/%slog
primary_hostname = sluice-exim.example
local_interfaces = 127.0.0.1
daemon_smtp_ports = $PORT
exim_user = Debian-exim
exim_group = Debian-exim
trusted_users = root
queue_only = true
acl_smtp_rcpt = acl_rcpt
acl_smtp_data = acl_data
acl_not_smtp = acl_not_smtp
SLUICE = $W/sluice_exim.so
SCONF = $1
begin acl
$acls
begin routers
begin transports
CONF
  chmod 0644 "$W/exim.conf"
}
start_exim() {
  env "${SL_SAN_ENV[@]}" "$W/exim4" -C "$W/exim.conf" -bdf -oX "$PORT" >>"$W/exim.out" 2>&1 &
  EXIM_PID=$!
  sl_wait_port "$PORT" 15 || { cat "$W/exim.out" "$W/log/paniclog" 2>/dev/null; exit 1; }
}
stop_exim() {
  kill "$EXIM_PID" 2>/dev/null
  wait "$EXIM_PID" 2>/dev/null
  EXIM_PID=""
}
send() {  # FROM TO [swaks options]: the refusal or "queued"
  local out body
  # A body of its own (random words), so that only the body test's letters
  # are near-duplicates; --body in the options wins.
  body=$(head -c 240 /dev/urandom | base64 | tr -d '\n' | sed 's/[+\/=]/ /g')
  out=$(timeout 60 swaks --server "127.0.0.1:$PORT" --from "$1" --to "$2" --helo c.example \
    --timeout 30 --body "$body" "${@:3}" 2>&1)
  local refusal
  refusal=$(grep -E '^<\*\* +[45][0-9]{2}' <<<"$out" | head -1 | sed -E 's/^<\*\* +//')
  if [[ -n "$refusal" ]]; then echo "$refusal"; else grep -qE '^<- +250 OK id=' <<<"$out" && echo queued; fi
}

sl_sanitizer_preload "$W/sluice_exim.so"  # Exim itself is not instrumented
write_exim_conf "$W/sluice.conf"
start_exim

# 1. The mailbox limit (3 an hour) through Exim's SMTP ACLs: each message
#    is its own Exim process; the 4th is deferred at RCPT with sluice's text.
for i in 1 2 3; do
  check "exim: message $i queued" "queued" "$(send a@acme.example r$i@remote.example)"
done
r=$(send a@acme.example r4@remote.example)
check "exim: 4th deferred with 451" "451" "$r"
check "exim: 4th names the rule" "mailbox messages limit 3/1h exceeded" "$r"
check "exim: the main log has sluice's line" "sluice: defer identity=<a@acme.example>" \
  "$(cat "$W/log/mainlog")"

# 2. exim -t (local submission; PHP's mail()): the script level, 1 an hour.
submit() {  # SCRIPT: exim -t's exit code
  printf 'From: web@acme.example\nTo: x@remote.example\nSubject: t\nX-PHP-Originating-Script: 33:%s\n\nhello\n' "$1" |
    timeout 60 env "${SL_SAN_ENV[@]}" "$W/exim4" -C "$W/exim.conf" -t -f web@acme.example >/dev/null 2>&1
  echo "exit $?"
}
check_eq "exim -t: the script's first message accepted" "exit 0" "$(submit contact.php)"
check_eq "exim -t: its second refused" "exit 1" "$(submit contact.php)"
check "exim -t: refusal logged" "rejected by non-SMTP ACL" "$(cat "$W/log/rejectlog" "$W/log/mainlog" 2>/dev/null)"
check_eq "exim -t: another script is not held" "exit 0" "$(submit other.php)"

# 3. sluice-policyd on the same table: Exim's counts are exact in its view,
#    and both charge the same counters.
SL_TABLE="$W/counters.table"  # the one Exim counts on
sl_policyd_start "$W/sluice.conf" || exit 1
check_eq "policyd sees Exim's 3 messages of a@" "3" "$(sl_usage a@acme.example messages)"
check_eq "policyd sees the script's 1 message" "1" "$(sl_usage script:33:contact.php messages)"
python3 - "$SL_POLICY_PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
s.sendall(b"request=smtpd_access_policy\nprotocol_state=RCPT\nsender=b@acme.example\n"
          b"client_address=127.0.0.1\ninstance=p1\nrecipient=x@remote.example\n\n")
assert s.recv(100).startswith(b"action=DUNNO")
PY
for i in 1 2; do
  check "exim: b@ message $i queued" "queued" "$(send b@acme.example s$i@remote.example)"
done
check "exim: b@'s 4th (1 via policyd, 2 via Exim) deferred" "451" "$(send b@acme.example s3@remote.example)"
check_eq "policyd: b@ at exactly 3" "3" "$(sl_usage b@acme.example messages)"

# 3b. The body reaches the fingerprints (from Exim's spool, across Exim's
#     processes through the shared abuse tables): the same letter to
#     different people, the second copy is refused at DATA (threshold 2).
letter() {  # NAME NUMBER
  printf 'Dear %s, your parcel %s is waiting at the depot near the station; bring this letter and an ID to collect it before Friday. Kind regards, the parcel service of the town.' "$1" "$2"
}
check "body: 1st letter queued" "queued" "$(send news@acme.example p1@remote.example --body "$(letter Alice 1001)")"
r=$(send news@acme.example p2@remote.example --body "$(letter Bob 2002)")
check "body: the near-duplicate refused at DATA" "451" "$r"
check "body: says why" "too many copies of the same message" "$r"
check "body: another text goes" "queued" \
  "$(send other@acme.example p4@remote.example --body "Lunch on Friday at the new noodle place near the station? We could walk there after the meeting.")"

# 3c. The hosts of the body's links, decoded from quoted-printable HTML,
#     on a domain list (rbldnsd): a listed one is refused at DATA.
qp_html=(--add-header "Content-Type: text/html; charset=utf-8"
  --add-header "Content-Transfer-Encoding: quoted-printable")
r=$(send shop@acme.example q1@remote.example "${qp_html[@]}" \
  --body '<p>Big sale today: <a href=3D"http://WWW.Spam-Example.test/buy?id=3D7">click=
 here</a></p>')
check "urls: a listed link's domain is refused at DATA" "554" "$r"
check "urls: says which list" "listed by dbl.bl.test" "$r"
check "urls: an unlisted link goes" "queued" "$(send shop@acme.example q2@remote.example \
  "${qp_html[@]}" --body '<p>Minutes: <a href=3D"http://wiki.ok-example.test/m">here</a></p>')"
check "urls: Exim's main log names the domain" "spam-example.test" \
  "$(grep 'sluice: ' "$W/log/mainlog" | grep dnsbl)"

# 3d. No module: Exim asks sluice-policyd with ${readsocket} (the policy
#     protocol; sluice_script carries the PHP header): the same limits and
#     counters.
stop_exim
write_exim_conf socket
start_exim
for i in 1 2 3; do
  check "readsocket: d@ message $i queued" "queued" "$(send d@acme.example t$i@remote.example)"
done
r=$(send d@acme.example t4@remote.example)
check "readsocket: the 4th is deferred at RCPT" "451" "$r"
check "readsocket: with sluice's text" "mailbox messages limit 3/1h exceeded" "$r"
check_eq "readsocket: counted exactly, on the shared table" "3" "$(sl_usage d@acme.example messages)"
check "readsocket: a script's 1st message" "queued" \
  "$(send e@acme.example u1@remote.example --add-header 'X-PHP-Originating-Script: 33:form.php')"
check "readsocket: its 2nd is deferred at DATA" "451" \
  "$(send f@acme.example u2@remote.example --add-header 'X-PHP-Originating-Script: 33:form.php')"
check_eq "readsocket: the script level counted it once" "1" "$(sl_usage script:33:form.php messages)"

# 4. A config the module cannot load: fail open (mail goes, a log line),
#    or closed when asked.
stop_exim
write_exim_conf "$W/broken.conf"
start_exim
check "broken config: fails open" "queued" "$(send c@acme.example r@remote.example)"
check "broken config: logged" "sluice: cannot load $W/broken.conf" "$(cat "$W/log/mainlog")"
stop_exim
write_exim_conf "closed:$W/broken.conf"
start_exim
check "broken config, closed: 451" "451" "$(send c@acme.example r@remote.example)"

# 5. The module preloaded into Exim's daemon with the config read there
#    (bindings/exim/README.md): the per-connection processes count exactly
#    on the shared table, and a config changed after the daemon started is
#    read again, not the daemon's copy used.
stop_exim
write_exim_conf "$W/sluice.conf"
# (Under ASan its runtime comes first: sl_sanitizer_preload's LD_PRELOAD.)
runtimes=""
[[ ${#SL_SAN_ENV[@]} -gt 0 ]] && runtimes="${SL_SAN_ENV[0]#LD_PRELOAD=} "
SL_SAN_ENV=("LD_PRELOAD=$runtimes$W/sluice_exim.so" "${SL_SAN_ENV[@]:1}" LD_BIND_NOW=1
  "SLUICE_EXIM_CONFIG=$W/sluice.conf")
start_exim
for i in 1 2 3; do
  check "preloaded: g@ message $i queued" "queued" "$(send g@acme.example v$i@remote.example)"
done
check "preloaded: the 4th is deferred" "mailbox messages limit 3/1h exceeded" \
  "$(send g@acme.example v4@remote.example)"
check_eq "preloaded: counted exactly, on the shared table" "3" "$(sl_usage g@acme.example messages)"
sed -i 's/limit { window: "1h" max: 3 }/limit { window: "1h" max: 5 }/' "$W/sluice.conf"
for i in 1 2 3 4 5; do
  check "preloaded, config changed: h@ message $i queued" "queued" \
    "$(send h@acme.example w$i@remote.example)"
done
check "preloaded, config changed: the new limit holds" "mailbox messages limit 5/1h exceeded" \
  "$(send h@acme.example w6@remote.example)"

echo "$SL_FAILURES failure(s)"
[[ $SL_FAILURES -eq 0 ]]
