#!/usr/bin/env bash
# sluice-milter against bad input, driven by miltertest (Debian's): abort
# in the middle of a body, end of message without RCPT, thousands of
# headers and over-long ones, binary and truncated MIME, missing macros, a
# client that disconnects at every stage, and a limit at RCPT
# (tests/milter/bad_input.lua). Then, through the admin socket: no
# reservation is lost or kept, and the milter still serves.
set -uo pipefail
RUNFILES="${TEST_SRCDIR:-$PWD}/${TEST_WORKSPACE:-sluice}"
MILTER="$RUNFILES/bindings/milter/sluice-milter"
SL_CLI="$RUNFILES/bindings/cli/sluice"
source "$RUNFILES/tests/postfix/env.sh"
command -v miltertest >/dev/null || { echo "needs miltertest (scripts/setup.sh)" >&2; exit 1; }

W="$(mktemp -d /tmp/sluice-milter.XXXXXX)"
PORT=$(sl_free_port)
SL_ADMIN="$W/admin.sock"
PID=""
cleanup() {
  if [[ -n "$PID" ]]; then
    kill "$PID" 2>/dev/null
    for ((i = 0; i < 100; i++)); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$PID" 2>/dev/null
    wait "$PID" 2>/dev/null
  fi
  rm -rf "$W"
}
trap cleanup EXIT

cat >"$W/sluice.conf" <<CONF
level { name: "mailbox" limit { window: "1h" max: 100 } limit { metric: RECIPIENTS window: "1h" max: 1000 } }
entity { level: "mailbox" name: "limit@acme.example" limit { window: "1h" max: 1 } }
policy { trusted_network: "192.0.2.0/24" }
CONF
"$MILTER" --config "$W/sluice.conf" --milter "inet:$PORT@127.0.0.1" --admin-socket "$SL_ADMIN" \
  --table "$W/counters.table" >"$W/milter.log" 2>&1 &
PID=$!
sl_wait_port "$PORT" 15 || { cat "$W/milter.log"; exit 1; }

out=$(cd "$W" && timeout 120 miltertest -D "SOCK=inet:$PORT@127.0.0.1" -s "$RUNFILES/tests/milter/bad_input.lua" 2>&1)
rc=$?
echo "$out"
while read -r line; do
  [[ "$line" == FAIL* ]] && SL_FAILURES=$((SL_FAILURES + 1))
done <<<"$out"
check_eq "miltertest ran to the end" "0" "$rc"
check "miltertest: every scenario ran" "0 lua failure(s)" "$out"

check_eq "abort: its recipients were given back" "0" "$(sl_usage abort@acme.example recipients)"
check_eq "abort: its message was not counted" "0" "$(sl_usage abort@acme.example messages)"
check_eq "the message after the abort counted" "1" "$(sl_usage after@acme.example messages)"
check_eq "disconnects: nothing stays reserved" "0" "$(sl_usage gone@acme.example recipients)"
check_eq "thousands of headers: counted once" "1" "$(sl_usage headers@acme.example messages)"
check_eq "limit: exactly the one allowed" "1" "$(sl_usage limit@acme.example messages)"
check "metrics count the milter's refusals" "sluice_milter_refused_total 1" \
  "$("$SL_CLI" --socket "$SL_ADMIN" metrics)"
check "the milter still runs" "running" "$(kill -0 "$PID" 2>/dev/null && echo running)"
check "it logged the limit" "rule=limit level=mailbox entity=<limit@acme.example>" "$(cat "$W/milter.log")"

echo "$SL_FAILURES failure(s)"
[[ $SL_FAILURES -eq 0 ]]
