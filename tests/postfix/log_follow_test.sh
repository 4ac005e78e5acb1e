#!/usr/bin/env bash
# Integration test: a real Postfix with Cyrus SASL (sasldb) writes its log
# to a file (maillog_file); sluice-policyd follows that log
# (--follow-log) and asks nothing of Postfix but the policy protocol. A
# client guessing alice's password gets 535 from Postfix three times;
# those log lines reach the AUTH brute-force detector, and the same client
# is then refused at its next connection even with the right password
# (smtpd_client_restrictions, smtpd_delay_reject = no: at CONNECT). Another
# client logs in and sends. Unknown recipients in the log (harvesting)
# block their client too. The position in the log survives a restart.
set -uo pipefail

RUNFILES="${TEST_SRCDIR:-$PWD}/${TEST_WORKSPACE:-sluice}"
export SL_POLICYD="$RUNFILES/bindings/postfix/sluice-policyd"
CLI="$RUNFILES/bindings/cli/sluice"
source "$RUNFILES/tests/postfix/env.sh"

sl_test_begin postfix-log-follow

cat >"$WORK/sluice.conf" <<'CONF'
level { name: "mailbox" limit { window: "1h" max: 100 } }
abuse {
  auth_failures_per_ip { threshold: 3 window: "10m" block: "10m" }
  unknown_recipients_per_ip { threshold: 3 window: "10m" block: "10m" }
}
CONF
SL_POLICYD_EXTRA=(--follow-log "$WORK/maillog" --follow-log-state "$WORK/maillog.pos")
sl_policyd_start "$WORK/sluice.conf" || exit 1
policy="check_policy_service inet:127.0.0.1:$SL_POLICY_PORT"
SL_POSTCONF_EXTRA=("smtpd_delay_reject = no" "smtpd_client_restrictions = $policy")
sl_postfix_start sasl || { cat "$WORK/postfix.log"; exit 1; }
sl_sasl_user alice@acme.example s3cret
good=(--auth PLAIN --auth-user alice@acme.example --auth-password s3cret)

# wait_log PATTERN: until the followed log shows it (bounded: 10 s).
wait_log() {
  local i
  for ((i = 0; i < 100; i++)); do
    grep -q -- "$1" "$WORK/maillog" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
# metric NAME: its value in sluice-policyd's /metrics.
metric() { curl -s "http://127.0.0.1:$SL_METRICS_PORT/metrics" | awk -v n="$1" '$1 == n {print $2}'; }

check "an honest login from 127.0.0.1 first" "queued as" \
  "$(sl_send alice@acme.example r1@remote.example "${good[@]}")"
for i in 1 2 3; do
  check "guess $i: Postfix says 535" "535" \
    "$(sl_send alice@acme.example g$i@remote.example --auth LOGIN \
      --auth-user alice@acme.example --auth-password "guess$i")"
done
wait_log "SASL LOGIN authentication failed" || echo "FAIL: no SASL failure in the log"
# The follower reads every 200 ms: give it (bounded) time to count three.
for ((i = 0; i < 50; i++)); do
  [[ "$(metric 'sluice_log_events_total{kind="auth_failed"}')" == 3 ]] && break
  sleep 0.1
done
check_eq "three AUTH failures fed from the log" "3" \
  "$(metric 'sluice_log_events_total{kind="auth_failed"}')"
check "the guessing client is refused at its next connection, right password or not" \
  "blocked after repeated abuse" "$(sl_send alice@acme.example r2@remote.example "${good[@]}")"
check "another client logs in and sends" "queued as" \
  "$(sl_send alice@acme.example r3@remote.example "${good[@]}" --local-interface 127.0.0.3)"
check "the policy log names the block" "blocked" "$(cat "$WORK/policyd.log")"

# Harvesting: RCPT to unknown local users from 127.0.0.4 (Postfix itself
# refuses them: mydestination holds a domain with no such user).
postconf -c "$SL_PF" -e "mydestination = local.example" \
  "local_recipient_maps = proxy:unix:passwd.byname" \
  "smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination" \
  "smtpd_recipient_restrictions = reject_unlisted_recipient, permit"
postfix -c "$SL_PF" reload >>"$WORK/postfix.log" 2>&1
sleep 1
for i in 1 2 3; do
  check "unknown user $i refused by Postfix" "550" \
    "$(sl_send someone@remote.example nosuchuser$i@local.example --local-interface 127.0.0.4)"
done
for ((i = 0; i < 50; i++)); do
  [[ "$(metric 'sluice_log_events_total{kind="unknown_recipient"}')" == 3 ]] && break
  sleep 0.1
done
check_eq "three unknown recipients fed from the log" "3" \
  "$(metric 'sluice_log_events_total{kind="unknown_recipient"}')"
check "the harvesting client is refused at its next connection" "blocked after repeated abuse" \
  "$(sl_send someone@remote.example root@local.example --local-interface 127.0.0.4)"

# A restart resumes where the log was read to: nothing counted twice.
sl_policyd_stop
[[ -s "$WORK/maillog.pos" ]] || echo "FAIL: no saved position"
sl_policyd_start "$WORK/sluice.conf" || exit 1
sleep 1
check_eq "after a restart, no old line is fed again" "0" \
  "$(metric 'sluice_log_events_total{kind="auth_failed"}')"

check_eq "no warning that the log's detectors never trip" "" \
  "$(grep 'never trips' "$WORK/policyd.log")"

echo "---- policyd log (last lines)"
tail -5 "$WORK/policyd.log"
echo "$SL_FAILURES failure(s)"
[[ $SL_FAILURES -eq 0 ]]
