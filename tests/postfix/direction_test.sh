#!/usr/bin/env bash
# Integration test: whose mail counts, with a real Postfix, a real rbldnsd
# and sluice-policyd. Postfix relays for acme.example and bakery.example
# (inbound mail for them comes from anywhere) and sends for 127.0.0.1
# (mynetworks, sluice's trusted_network) and SASL users. Other loopback
# addresses play the internet: 127.0.0.5 an outside server, 127.0.0.9 a
# customer's home line that a PBL-like list names.
# Shows: a forged-sender flood spends nothing of the customer's quota and
# the customer's own (SASL) mail goes, from a listed address; a forged
# exempt sender is inbound and counted at its client; inbound mail for a
# domain flows while that domain's outgoing mail is at its limit, and
# neither changes the other's counts; `sluice explain` and the log say
# which direction and why; a 330-byte local part charges its domain; a
# message over a GCRA bytes burst is refused for good (552 5.3.4); an
# END-OF-MESSAGE after its transaction expired still charges its bytes;
# recipients Postfix refuses after sluice's RCPT check are given back.
set -uo pipefail

RUNFILES="${TEST_SRCDIR:-$PWD}/${TEST_WORKSPACE:-sluice}"
export SL_POLICYD="$RUNFILES/bindings/postfix/sluice-policyd"
SL_CLI="$RUNFILES/bindings/cli/sluice"
CLI="$SL_CLI"
source "$RUNFILES/tests/postfix/env.sh"

sl_test_begin postfix-direction rbldnsd

# A PBL-like list: the customer's home line.
sl_rbldnsd_start "$WORK/zones" pbl.bl.test ip4set "127.0.0.10:Residential address" 127.0.0.9
DNS_PORT=$SL_DNS_PORT

cat >"$WORK/sluice.conf" <<CONF
level { name: "subscription" }
level { name: "domain" limit { window: "1h" max: 70 } }
level {
  name: "mailbox"
  limit { window: "1h" max: 60 }
  limit { metric: RECIPIENTS window: "1h" max: 100 }
  limit { metric: BYTES window: "1h" max: 50000 }
}
level { name: "client_ip" limit { window: "1h" max: 200 } }
entity { level: "subscription" name: "bakery" }
entity { level: "domain" name: "bakery.example" parent: "bakery" }
entity { level: "domain" name: "acme.example" parent: "bakery" limit { window: "1h" max: 3 } }
entity {
  level: "mailbox"
  name: "big@bakery.example"
  limit { metric: BYTES algorithm: GCRA window: "1h" max: 1000000 burst: 20000 }
}
exempt { sender: "postmaster@acme.example" }
policy { trusted_network: "127.0.0.1/32" transaction_timeout: "2s" }
reputation {
  nameserver: "127.0.0.1"
  port: $DNS_PORT
  list { zone: "pbl.bl.test" kind: SPAMHAUS }
}
CONF

SL_POLICYD_EXTRA=(--maintain-every 1)
sl_policyd_start "$WORK/sluice.conf" || exit 1
policy="check_policy_service inet:127.0.0.1:$SL_POLICY_PORT"
SL_POSTCONF_EXTRA=(
  "mynetworks = 127.0.0.1/32"
  "relay_domains = acme.example bakery.example"
  "relay_transport = relay:[127.0.0.1]:$SL_SINK_PORT"
  "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination"
  # sluice first, then a restriction that refuses some recipients after it.
  "smtpd_recipient_restrictions = $policy, check_recipient_access inline:{refused@bakery.example=REJECT}, permit"
  "smtpd_end_of_data_restrictions = $policy"
)
sl_postfix_start sasl || { cat "$WORK/postfix.log"; exit 1; }
sl_sasl_user info@bakery.example s3cret
auth=(--auth PLAIN --auth-user info@bakery.example --auth-password s3cret)

# smtp FROM-ADDRESS SCRIPT: SMTP sessions in Python (bounded by timeouts);
# prints one reply per line.
smtp() {
  timeout 120 python3 - "$SL_SMTP_PORT" "$1" "$2" <<'PY'
import smtplib, sys, time
port, source, script = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = smtplib.SMTP("127.0.0.1", port, timeout=30, source_address=(source, 0))
s.ehlo("client.example")
for step in script.split(";"):
    op, _, arg = step.strip().partition(" ")
    if op == "flood":  # N transactions: MAIL FROM, one RCPT, RSET
        n, sender, rcpt = arg.split()
        codes = {}
        for i in range(int(n)):
            s.mail(sender)
            code, _ = s.rcpt(rcpt.replace("N", str(i)))
            codes[code] = codes.get(code, 0) + 1
            s.rset()
        print("flood", " ".join(f"{c}x{k}" for k, c in sorted(codes.items())))
    elif op == "mail":
        print(*s.mail(arg))
    elif op == "rcpt":
        print(*s.rcpt(arg))
    elif op == "sleep":
        time.sleep(float(arg))
    elif op == "data":  # a body of N bytes
        body = "Subject: sluice test\r\n\r\n" + ("x" * 70 + "\r\n") * (int(arg) // 72)
        print(*s.data(body))
s.quit()
PY
}

# 1. A forged-sender flood from outside: 60 transactions "from"
#    info@bakery.example (its mailbox limit is 60/h) spend none of it.
check "forged flood: all 60 accepted as inbound" "flood 60x250" \
  "$(smtp 127.0.0.5 "flood 60 info@bakery.example uN@bakery.example")"
check_eq "forged flood: the mailbox spent nothing" "0" "$(sl_usage info@bakery.example messages 1h)"
check_eq "forged flood: counted at the outside client" "60" \
  "$(sl_usage client_ip:127.0.0.5 messages 1h)"
# The customer, logged in from home (127.0.0.9, on the PBL-like list).
check "victim's own mail goes, from a listed address" "queued as" \
  "$(sl_send info@bakery.example friend@remote.example -li 127.0.0.9 "${auth[@]}")"
check_eq "victim's mail counted once" "1" "$(sl_usage info@bakery.example messages 1h)"
check "the listed address without a login is refused" "554 5.7.1" \
  "$(sl_send someone@remote.example info@bakery.example -li 127.0.0.9)"

# 2. A forged exempt sender from outside is inbound, counted at its client.
before=$(sl_usage client_ip:127.0.0.5 messages 1h)
check "forged exempt sender accepted (inbound)" "flood 5x250" \
  "$(smtp 127.0.0.5 "flood 5 postmaster@acme.example boss@acme.example")"
check_eq "forged exempt sender counted at its client" "$((before + 5))" \
  "$(sl_usage client_ip:127.0.0.5 messages 1h)"
x=$("$CLI" --socket "$SL_ADMIN" explain client_address=127.0.0.5 sender=postmaster@acme.example)
check "explain: inbound, and why" "direction: inbound (untrusted_client)" "$x"
x=$("$CLI" --socket "$SL_ADMIN" explain client_address=127.0.0.9 sasl_username=info@bakery.example)
check "explain: a login is outgoing" "direction: outgoing (sasl_login)" "$x"
check "explain: a login's path includes its domain" "domain       bakery.example" "$x"

# 3. acme.example may send 3 an hour; inbound mail for it keeps flowing.
for i in 1 2 3; do
  check "acme outgoing $i accepted" "queued as" "$(sl_send a$i@acme.example r$i@remote.example)"
done
r=$(sl_send a4@acme.example r4@remote.example)
check "acme outgoing 4th deferred" "451 4.7.1" "$r"
check "acme outgoing 4th names its domain" "domain messages limit 3/1h exceeded (acme.example)" "$r"
for i in 1 2 3 4; do
  check "inbound to acme $i accepted" "queued as" \
    "$(sl_send partner$i@remote.example boss@acme.example -li 127.0.0.5)"
done
check_eq "acme's outgoing count unchanged by inbound" "3" "$(sl_usage domain:acme.example messages 1h)"
check "log says the direction of a refusal" "direction=outgoing direction_by=trusted_network" \
  "$(cat "$WORK/policyd.log")"

# 4. A 330-byte local part still charges its domain.
before=$(sl_usage domain:bakery.example messages 1h)
long="$(printf 'a%.0s' $(seq 1 330))@bakery.example"
check "long local part accepted" "queued as" "$(sl_send "$long" r@remote.example)"
check_eq "long local part charged its domain" "$((before + 1))" \
  "$(sl_usage domain:bakery.example messages 1h)"

# 5. More bytes at once than a GCRA limit's burst: refused for good.
r=$(smtp 127.0.0.1 "mail big@bakery.example; rcpt r@remote.example; data 30000")
check "over the GCRA burst: 552 5.3.4" "552 b'5.3.4" "$r"
check "over the GCRA burst: can never pass" "can never pass" "$r"

# 6. END-OF-MESSAGE after the transaction expired (timeout 2 s, swept every
#    second) still charges its bytes: 30000 pass, 30000 more are over 50000.
r=$(smtp 127.0.0.1 "mail late@bakery.example; rcpt r@remote.example; sleep 4; data 30000")
check "late end-of-message accepted" "250" "$r"
b=$(sl_usage late@bakery.example bytes 1h)
check "late end-of-message charged its bytes (~30000)" "yes" "$([[ ${b:-0} -ge 29000 ]] && echo yes || echo "no: $b")"
r=$(smtp 127.0.0.1 "mail late@bakery.example; rcpt r@remote.example; sleep 4; data 30000")
check "second late end-of-message refused over bytes" "mailbox bytes limit 50000/1h" "$r"

# 7. A recipient Postfix refuses after sluice's RCPT check is given back
#    at END-OF-MESSAGE (recipient_count).
r=$(smtp 127.0.0.1 "mail count@bakery.example; rcpt a@remote.example; rcpt refused@bakery.example; rcpt b@remote.example; data 500")
check "message with a refused recipient accepted" "250" "$r"
check_eq "only the 2 accepted recipients stay counted" "2" \
  "$(sl_usage count@bakery.example recipients 1h)"

echo "---- policyd log (last lines)"
tail -5 "$WORK/policyd.log"
echo "$SL_FAILURES failure(s)"
[[ $SL_FAILURES -eq 0 ]]
