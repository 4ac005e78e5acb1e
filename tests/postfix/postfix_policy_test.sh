#!/usr/bin/env bash
# Integration test: a real Postfix (private instance on 127.0.0.1) asks
# sluice-policyd at RCPT and END-OF-MESSAGE; smtp-sink stands behind it.
# Shows: mailbox, domain and subscription limits trip at exactly the
# configured counts; a subscription's limit stops all its domains;
# recipients are counted per recipient; shadow mode lets mail through with
# a PREPEND header; a reload changes a limit live and a bad config is
# refused; a restarted (kill -9) daemon keeps its counts; with the daemon
# down Postfix answers 451 4.3.5; SASL-authenticated senders (Cyrus SASL,
# sasldb) are keyed by sasl_username.
set -uo pipefail

RUNFILES="${TEST_SRCDIR:-$PWD}/${TEST_WORKSPACE:-sluice}"
export SL_POLICYD="$RUNFILES/bindings/postfix/sluice-policyd"
CLI="$RUNFILES/bindings/cli/sluice"
source "$RUNFILES/tests/postfix/env.sh"

sl_test_begin postfix-policy

cat >"$WORK/sluice.conf" <<'CONF'
level { name: "subscription" limit { window: "1h" max: 8 } }
level { name: "domain" limit { window: "1h" max: 6 } }
level { name: "mailbox" limit { window: "1h" max: 3 } limit { metric: RECIPIENTS window: "1h" max: 10 } }
entity { level: "subscription" name: "acme" }
entity { level: "domain" name: "acme.example" parent: "acme" }
entity { level: "domain" name: "shop.example" parent: "acme" }
entity { level: "subscription" name: "solo" limit { window: "1h" max: 100 } }
entity { level: "domain" name: "solo.example" parent: "solo" limit { window: "1h" max: 100 } }
entity { level: "domain" name: "quiet.example" parent: "solo" limit { window: "1h" max: 100 } }
CONF

sl_policyd_start "$WORK/sluice.conf" || exit 1
sl_postfix_start || { cat "$WORK/postfix.log"; exit 1; }

# 1. Mailbox limit: exactly 3 messages, the 4th is deferred at RCPT.
for i in 1 2 3; do
  check "mailbox message $i accepted" "queued as" "$(sl_send a1@acme.example r$i@remote.example)"
done
r=$(sl_send a1@acme.example r4@remote.example)
check "mailbox 4th deferred" "451 4.7.1" "$r"
check "mailbox 4th names the rule" "mailbox messages limit 3/1h exceeded (a1@acme.example)" "$r"

# 2. Domain limit: acme.example has 6; a2 sends 3 (total 6), a3's first is deferred.
for i in 1 2 3; do
  check "domain message $i of a2 accepted" "queued as" "$(sl_send a2@acme.example s$i@remote.example)"
done
check "domain 7th deferred" "domain messages limit 6/1h exceeded (acme.example)" \
  "$(sl_send a3@acme.example s4@remote.example)"

# 3. Subscription limit: acme has 8; shop.example is another domain of it.
for i in 1 2; do
  check "subscription message $i of shop.example accepted" "queued as" \
    "$(sl_send b1@shop.example t$i@remote.example)"
done
check "subscription 9th deferred on a sibling domain" \
  "subscription messages limit 8/1h exceeded (acme)" "$(sl_send b2@shop.example t3@remote.example)"

# 4. Recipients are counted per recipient (mailbox: 10 recipients/h).
rcpts=$(printf 'u%d@remote.example,' $(seq 1 10))
check "10 recipients in one message accepted" "queued as" "$(sl_send c1@solo.example "${rcpts%,}")"
check "11th recipient deferred" "mailbox recipients limit 10/1h exceeded (c1@solo.example)" \
  "$(sl_send c1@solo.example u11@remote.example)"

# The counts the daemon reports agree with what Postfix let through.
top=$("$CLI" --socket "$SL_ADMIN" top mailbox)
check "top lists a1 with 3 messages" "a1@acme.example" "$top"
explain=$("$CLI" --socket "$SL_ADMIN" explain a1@acme.example)
check "explain shows the subscription at 8/8" "subscription acme" "$explain"
echo "$explain"

# 5. Reload changes a limit live: a1's mailbox limit 3 -> 5.
sed -i 's/limit { window: "1h" max: 3 }/limit { window: "1h" max: 5 }/' "$WORK/sluice.conf"
sed -i 's/name: "solo" limit { window: "1h" max: 100 }/name: "solo" limit { window: "1h" max: 100 } limit { applies_to: "mailbox" window: "1h" max: 5 }/' "$WORK/sluice.conf"
check "reload accepted" "reloaded" "$("$CLI" --socket "$SL_ADMIN" reload)"
for i in 1 2; do
  check "after reload message $i of d1 accepted" "queued as" "$(sl_send d1@quiet.example v$i@remote.example)"
done
# A bad config is refused with its position; the running one stays.
cp "$WORK/sluice.conf" "$WORK/good.conf"
echo 'level { name: "mailbox" limit { window: "1q" max: 1 } }' >>"$WORK/sluice.conf"
bad=$("$CLI" --socket "$SL_ADMIN" reload 2>&1)
check "bad reload refused with line:column" "sluice.conf:10:" "$bad"
cp "$WORK/good.conf" "$WORK/sluice.conf"
kill -HUP "$SL_POLICYD_PID"
for i in 3 4 5; do
  check "still the good config: d1 message $i accepted" "queued as" "$(sl_send d1@quiet.example v$i@remote.example)"
done
check "d1 6th deferred (limit 5 after reload)" "mailbox messages limit 5/1h" \
  "$(sl_send d1@quiet.example v6@remote.example)"

# 6. kill -9 and restart: counts survive, no fresh quota.
sl_policyd_stop kill
sl_policyd_start "$WORK/sluice.conf" || exit 1
check "after kill -9, d1 still deferred" "mailbox messages limit 5/1h" \
  "$(sl_send d1@quiet.example v7@remote.example)"

# 7. Shadow mode: the limit only adds a header.
sed -i 's/level { name: "mailbox" limit { window: "1h" max: 3 }/level { name: "mailbox" limit { window: "1h" max: 3 shadow: true }/' "$WORK/sluice.conf"
sed -i 's/limit { applies_to: "mailbox" window: "1h" max: 5 }/limit { applies_to: "mailbox" window: "1h" max: 5 shadow: true }/' "$WORK/sluice.conf"
check "shadow reload" "reloaded" "$("$CLI" --socket "$SL_ADMIN" reload)"
before=$(find "$SL_SINK" -type f | wc -l)
check "shadow: over-limit mail accepted" "queued as" "$(sl_send d1@quiet.example v8@remote.example)"
n=$(sl_sink_count $((before + 1)))
if grep -l "X-Sluice: would defer" "$SL_SINK"/* >/dev/null 2>&1; then
  echo "ok   shadow header in the delivered message"
else
  echo "FAIL shadow header missing ($n messages in the sink)"
  SL_FAILURES=$((SL_FAILURES + 1))
fi

cp "$WORK/good.conf" "$WORK/sluice.conf"
check "shadow off again" "reloaded" "$("$CLI" --socket "$SL_ADMIN" reload)"

# 8. Daemon down: Postfix defers with its default action.
sl_policyd_stop
check "daemon down: 451 4.3.5" "451 4.3.5" "$(sl_send e1@solo.example w1@remote.example)"
sl_policyd_start "$WORK/sluice.conf" || exit 1

# 9. Bad input straight to the daemon: logged and answered
# DEFER_IF_PERMIT with the reason; the connection goes on serving.
python3 - "$SL_POLICY_PORT" <<'PY'
import socket, sys
port = int(sys.argv[1])
def ask(s, payload):
    s.sendall(payload)
    got = b""
    while not got.endswith(b"\n\n"):
        chunk = s.recv(4096)
        if not chunk:
            return got + b"<closed>"
        got += chunk
    return got
s = socket.create_connection(("127.0.0.1", port), 5)
s.settimeout(5)
for payload in (b"\x00\x01\x02garbage\n\n", b"protocol_state=RCPT\n\n",
                b"request=smtpd_access_policy\nsender=" + b"a" * 5000 + b"\n\n"):
    answer = ask(s, payload)
    assert answer.startswith(b"action=DEFER_IF_PERMIT sluice: bad policy request ("), answer
good = b"request=smtpd_access_policy\nprotocol_state=RCPT\nsender=ok@x.example\ninstance=z\n\n"
assert ask(s, good) == b"action=DUNNO\n\n"
print("ok   bad input answered DEFER_IF_PERMIT; the same connection still served")
PY
[[ $? -eq 0 ]] || SL_FAILURES=$((SL_FAILURES + 1))
check "bad input logged" "no request= attribute" "$(cat "$WORK/policyd.log")"
sl_postfix_stop

# 10. SASL: authenticated senders are keyed by sasl_username, whatever
# MAIL FROM says.
sl_postfix_start sasl || { cat "$WORK/postfix.log"; exit 1; }
sl_sasl_user alice@solo.example s3cret
auth=(--auth PLAIN --auth-user alice@solo.example --auth-password s3cret)
for i in 1 2 3 4 5; do
  check "sasl message $i accepted" "queued as" \
    "$(sl_send "sender$i@quiet.example" x$i@remote.example "${auth[@]}")"
done
check "sasl: 6th deferred on alice's quota" "mailbox messages limit 5/1h exceeded (alice@solo.example)" \
  "$(sl_send other@solo.example x6@remote.example "${auth[@]}")"
check "sasl: wrong password refused by Postfix" "535" \
  "$(sl_send a@solo.example y@remote.example --auth PLAIN --auth-user alice@solo.example --auth-password nope)"
check "log names the SASL identity" "identity=<alice@solo.example>" "$(cat "$WORK/policyd.log")"

echo "---- policyd log (last lines)"
tail -5 "$WORK/policyd.log"
echo "$SL_FAILURES failure(s)"
[[ $SL_FAILURES -eq 0 ]]
