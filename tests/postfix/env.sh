# Shell helpers to run a private Postfix with sluice-policyd as its policy
# service and smtp-sink behind it, all on 127.0.0.1 high ports. Sourced by
# the Postfix integration test and by the demo (scripts/run.sh).
#
#   sl_test_begin NAME [TOOL...]  a test's start: root, postfix, swaks and the TOOLs or
#                            exit 1; WORK=$TEST_TMPDIR/NAME afresh, sl_env_init, and on
#                            exit Postfix, the daemon and rbldnsd stopped (sl_test_end)
#   sl_env_init DIR          choose ports, create DIR layout
#   sl_policyd_start CONFIG  start sluice-policyd (table and admin socket in DIR)
#   sl_policyd_stop [KILL]   stop it by PID (TERM, or KILL with "kill")
#   sl_postfix_start [sasl]  start the sink and a private Postfix (optionally with
#                            Cyrus SASL on a sasldb in DIR); main.cf settings in
#                            the array SL_POSTCONF_EXTRA come last
#   (SL_POLICYD_EXTRA: more sluice-policyd options, an array)
#   sl_usage ENTITY METRIC [WINDOW]  the daemon's usage of one rule (admin socket)
#   check NAME EXPECTED ACTUAL     ok if ACTUAL holds EXPECTED; counts SL_FAILURES
#   check_eq NAME EXPECTED ACTUAL  ok if ACTUAL is EXPECTED
#   sl_postfix_stop          stop Postfix and the sink
#   sl_rbldnsd_start DIR ZONE TYPE ANSWER ENTRY...  a real rbldnsd serving a DNS list
#   sl_rbldnsd_stop
#   sl_milter_postconf PORT  main.cf lines for a milter on PORT (SMTP and sendmail(1)),
#                            appended to SL_POSTCONF_EXTRA
#   sl_send FROM TO... [-- SWAKS-OPTIONS]  one message through Postfix with swaks;
#                            prints the SMTP status line of the last reply, returns swaks' code
# Every wait is bounded in count and time.

SL_POLICYD="${SL_POLICYD:-sluice-policyd}"
SL_POLICYD_EXTRA=()
SL_POSTCONF_EXTRA=()
SL_FAILURES=0

sl_result() {  # NAME OK WHAT
  if [[ "$2" == yes ]]; then
    echo "ok   $1"
    return
  fi
  echo "FAIL $1: $3"
  if [[ -f "${SL_RUN:-}/last_swaks.txt" ]]; then
    tail -n 12 "$SL_RUN/last_swaks.txt" | sed 's/^/     last swaks: /'
  fi
  SL_FAILURES=$((SL_FAILURES + 1))
}
check() {
  sl_result "$1" "$([[ "$3" == *"$2"* ]] && echo yes)" "expected [$2] in [$3]"
}
check_eq() {
  sl_result "$1" "$([[ "$3" == "$2" ]] && echo yes)" "expected [$2], got [$3]"
}

sl_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

sl_wait_port() {  # PORT SECONDS
  local deadline=$((SECONDS + $2))
  while ((SECONDS <= deadline)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "port $1 did not open within $2 s" >&2
  return 1
}

sl_test_begin() {
  local name="$1" tool
  shift
  for tool in postfix swaks "$@"; do
    if [[ $(id -u) -ne 0 ]] || ! command -v "$tool" >/dev/null; then
      echo "needs root, postfix, swaks${*:+ and $*} (scripts/setup.sh installs them)" >&2
      exit 1
    fi
  done
  WORK="${TEST_TMPDIR:-/tmp}/$name"
  rm -rf "$WORK"
  sl_env_init "$WORK"
  trap sl_test_end EXIT
}
sl_test_end() {
  sl_postfix_stop
  sl_policyd_stop
  sl_rbldnsd_stop
  rm -rf "$SL_RUN"
}

sl_env_init() {
  SL_DIR="$1"
  mkdir -p "$SL_DIR"
  SL_DIR="$(cd "$SL_DIR" && pwd)"
  SL_SMTP_PORT=$(sl_free_port)
  SL_SINK_PORT=$(sl_free_port)
  SL_POLICY_PORT=$(sl_free_port)
  SL_METRICS_PORT=$(sl_free_port)
  # A unix socket path must be short (108 bytes): not under Bazel's tmp.
  SL_RUN="$(mktemp -d /tmp/sluice-test.XXXXXX)"
  chmod 0755 "$SL_RUN"  # Postfix daemons (user postfix) look inside
  SL_ADMIN="$SL_RUN/admin.sock"
  SL_PF="$SL_RUN/pf"  # Postfix's own sockets live under its queue directory
  SL_SINK="$SL_RUN/sink"  # smtp-sink writes as nobody
  mkdir -p "$SL_SINK"
  chmod 0777 "$SL_SINK"
  SL_TABLE="$SL_DIR/counters.table"

}

sl_policyd_start() {
  local config="$1"
  local args=(--listen "inet:127.0.0.1:$SL_POLICY_PORT" --admin-socket "$SL_ADMIN"
    --metrics "127.0.0.1:$SL_METRICS_PORT" --table "$SL_TABLE" --pid-file "$SL_DIR/policyd.pid")
  if [[ -n "$config" ]]; then args+=(--config "$config"); fi
  args+=("${SL_POLICYD_EXTRA[@]}")
  "$SL_POLICYD" "${args[@]}" >>"$SL_DIR/policyd.log" 2>&1 &
  SL_POLICYD_PID=$!
  disown "$SL_POLICYD_PID" 2>/dev/null || true  # no "Killed" notice from bash
  sl_wait_port "$SL_POLICY_PORT" 10 || { tail -5 "$SL_DIR/policyd.log" >&2; return 1; }
}

sl_policyd_stop() {
  [[ -n "${SL_POLICYD_PID:-}" ]] || return 0
  if [[ "${1:-}" == kill ]]; then kill -9 "$SL_POLICYD_PID" 2>/dev/null; else kill "$SL_POLICYD_PID" 2>/dev/null; fi
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$SL_POLICYD_PID" 2>/dev/null || break
    sleep 0.05
  done
  kill -9 "$SL_POLICYD_PID" 2>/dev/null || true
  wait "$SL_POLICYD_PID" 2>/dev/null || true
  SL_POLICYD_PID=""
}

sl_postfix_start() {
  local sasl="${1:-}"
  local pf="$SL_PF"
  mkdir -p "$pf/queue" "$pf/data"
  chown postfix "$pf/data"
  cp /etc/postfix/master.cf "$pf/master.cf" 2>/dev/null || cp /usr/share/postfix/master.cf.dist "$pf/master.cf"
  : >"$pf/main.cf"
  local policy="check_policy_service inet:127.0.0.1:$SL_POLICY_PORT"
  postconf -c "$pf" -e \
    "compatibility_level = 3.6" \
    "queue_directory = $pf/queue" \
    "data_directory = $pf/data" \
    "myhostname = sluice-test.example" \
    "mydomain = sluice-test.example" \
    "inet_interfaces = 127.0.0.1" \
    "inet_protocols = ipv4" \
    "mynetworks = 127.0.0.0/8" \
    "mydestination =" \
    "relayhost = [127.0.0.1]:$SL_SINK_PORT" \
    "alias_maps =" "alias_database =" \
    "smtp_tls_security_level = none" \
    "smtpd_tls_security_level = none" \
    "maillog_file = $SL_DIR/maillog" \
    "maillog_file_prefixes = $SL_DIR,/var,/dev/stdout" \
    "smtpd_recipient_restrictions = $policy, permit_mynetworks, reject" \
    "smtpd_end_of_data_restrictions = $policy" \
    "smtpd_policy_service_default_action = 451 4.3.5 Server configuration problem" \
    "smtp_connection_cache_on_demand = no" \
    "default_destination_concurrency_limit = 4"
  if [[ "$sasl" == sasl ]]; then
    mkdir -p "$pf/sasl"
    cat >"$pf/sasl/smtpd.conf" <<CONF
pwcheck_method: auxprop
auxprop_plugin: sasldb
mech_list: PLAIN LOGIN
sasldb_path: $pf/sasl/sasldb2
CONF
    postconf -c "$pf" -e \
      "smtpd_sasl_auth_enable = yes" \
      "smtpd_sasl_type = cyrus" \
      "smtpd_sasl_path = smtpd" \
      "cyrus_sasl_config_path = $pf/sasl" \
      "smtpd_sasl_security_options = noanonymous" \
      "smtpd_tls_auth_only = no" \
      "mynetworks = 127.0.0.2/32" \
      "smtpd_recipient_restrictions = permit_sasl_authenticated, reject" \
      "smtpd_relay_restrictions = $policy, permit_sasl_authenticated, reject"
  fi
  if ((${#SL_POSTCONF_EXTRA[@]} > 0)); then postconf -c "$pf" -e "${SL_POSTCONF_EXTRA[@]}"; fi
  postconf -c "$pf" -M# smtp/inet
  postconf -c "$pf" -Me "127.0.0.1:$SL_SMTP_PORT/inet = 127.0.0.1:$SL_SMTP_PORT inet n - n - - smtpd"
  postconf -c "$pf" -F '*/*/chroot = n'
  smtp-sink -u nobody -d "$SL_SINK/%H%M%S." "127.0.0.1:$SL_SINK_PORT" 100 >>"$SL_DIR/sink.log" 2>&1 &
  SL_SINK_PID=$!
  postfix -c "$pf" start >>"$SL_DIR/postfix.log" 2>&1
  sl_wait_port "$SL_SMTP_PORT" 20
}

sl_sasl_user() {  # USER@REALM PASSWORD
  local user="${1%@*}" realm="${1#*@}"
  echo "$2" | saslpasswd2 -p -f "$SL_PF/sasl/sasldb2" -c -u "$realm" "$user"
  chown postfix "$SL_PF/sasl/sasldb2"
}

sl_postfix_stop() {
  local pf="$SL_PF"
  [[ -n "$pf" && -f "$pf/main.cf" ]] || return 0
  postfix -c "$pf" stop >>"$SL_DIR/postfix.log" 2>&1 || true
  local pidf="$pf/queue/pid/master.pid" i
  if [[ -f "$pidf" ]]; then
    local pid
    pid=$(tr -d ' ' <"$pidf")
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  if [[ -n "${SL_SINK_PID:-}" ]]; then
    kill "$SL_SINK_PID" 2>/dev/null || true
    wait "$SL_SINK_PID" 2>/dev/null || true
    SL_SINK_PID=""
  fi
}

# sl_send FROM "TO1,TO2" [swaks options...]: prints the refusal or the
# "queued as" reply line; the whole swaks transcript is in
# $SL_RUN/last_swaks.txt.
sl_send() {
  local from="$1" to="$2"
  shift 2
  local out rc
  out=$(timeout 60 swaks --server "127.0.0.1:$SL_SMTP_PORT" --from "$from" --to "$to" \
    --helo client.example --timeout 30 --header "Subject: sluice test" "$@" 2>&1)
  rc=$?
  SL_LAST_OUTPUT="$out"
  # Also in a file: callers use $(sl_send ...), a subshell.
  printf '%s\n' "$out" >"$SL_RUN/last_swaks.txt" 2>/dev/null || true
  # Here-strings, not pipes from printf: bash writes a line at a time, and
  # a reader that stops at its first match (grep -q, head) would leave the
  # writer a SIGPIPE that pipefail turns into a failed test.
  local replies refusal
  replies=$(grep -E '^<(-|\*\*|~) +[0-9]{3}' <<<"$out" | sed -E 's/^<(-|\*\*|~) +//')
  # The refusal if there was one, else the "queued as" line.
  refusal=$(grep -m 1 -E '^[45][0-9]{2}' <<<"$replies")
  if [[ -n "$refusal" ]]; then
    printf '%s\n' "$refusal"
  else
    grep -E 'queued as' <<<"$replies" | tail -1
  fi
  return $rc
}

# Waits until the sink has N messages (bounded); prints the count.
sl_sink_count() {
  local want="$1" i n=0
  for ((i = 0; i < 200; i++)); do
    n=$(find "$SL_SINK" -type f | wc -l)
    [[ "$n" -ge "$want" ]] && break
    sleep 0.05
  done
  echo "$n"
}

# sl_sanitizer_preload LIBRARY: when the suite runs under ASan, a library
# built with it is loaded by programs that are not (python3, Exim, a C
# program built outside Bazel); they need the sanitizer runtimes first.
# Sets SL_SAN_ENV (NAME=VALUE words for `env`; empty otherwise).
SL_SAN_ENV=()
sl_sanitizer_preload() {
  SL_SAN_ENV=()
  [[ "${SLUICE_SANITIZER:-}" == asan ]] || return 0
  local runtimes
  runtimes=$(ldd "$1" | awk '/lib(asan|ubsan)\.so/ { print $3 }' | tr '\n' ' ')
  SL_SAN_ENV=("LD_PRELOAD=$runtimes" "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:verify_asan_link_order=0")
}

# sl_usage ENTITY METRIC [WINDOW]: the usage column of one of the entity's
# rules, from the running daemon (needs $SL_ADMIN and $SL_CLI).
sl_usage() {
  "$SL_CLI" --socket "$SL_ADMIN" usage "$1" |
    awk -v m="$2" -v w="${3:-1h}" '$3 == m && $4 == w { print $5; exit }'
}

# sl_rbldnsd_start DIR ZONE TYPE ANSWER ENTRY...: a real rbldnsd on a free
# port of 127.0.0.1 serving ZONE (rbldnsd dataset TYPE: ip4set, dnset)
# from files in DIR: the ENTRIES answer ANSWER ("127.0.0.2:text"), and the
# RFC 5782 test point is listed too. Sets SL_DNS_PORT and SL_RBL_PID.
sl_rbldnsd_start() {
  local dir="$1" zone="$2" type="$3" answer="$4"
  shift 4
  mkdir -p "$dir"
  {
    echo '$SOA 300 ns.bl.test. hostmaster.bl.test. 0 600 300 86400 60'
    echo '$TTL 300'
    echo ":${answer} \$"
    if [[ "$type" == dnset ]]; then echo test; else echo 127.0.0.2; fi
    printf '%s\n' "$@"
  } >"$dir/$zone.zone"
  chmod -R a+rX "$dir"
  SL_DNS_PORT=$(sl_free_port)
  rbldnsd -u rbldns -n -q -b "127.0.0.1/$SL_DNS_PORT" -w "$dir" \
    "$zone:$type:$zone.zone" >>"$dir/rbldnsd.log" 2>&1 &
  SL_RBL_PID=$!
}

sl_rbldnsd_stop() {
  [[ -n "${SL_RBL_PID:-}" ]] || return 0
  kill "$SL_RBL_PID" 2>/dev/null || true
  wait "$SL_RBL_PID" 2>/dev/null || true
  SL_RBL_PID=""
}

# sl_milter_postconf PORT: Postfix asks the milter on PORT about SMTP mail
# and about what sendmail(1) submits; a milter that is down defers.
sl_milter_postconf() {
  SL_POSTCONF_EXTRA+=(
    "smtpd_milters = inet:127.0.0.1:$1"
    "non_smtpd_milters = inet:127.0.0.1:$1"
    "milter_default_action = tempfail"
    "milter_protocol = 6"
  )
}
