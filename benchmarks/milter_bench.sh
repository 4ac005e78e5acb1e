#!/usr/bin/env bash
# Messages per second through a real Postfix (smtp-source -> Postfix ->
# smtp-sink, all on 127.0.0.1) in one run, five ways:
#   none      no milter;
#   envelope  the cheapest milter for the envelope alone (milter_floor
#             --envelope: C, does nothing, no headers or body): what Postfix
#             pays for having a milter at all;
#   floor     the cheapest milter that reads every stage sluice reads
#             (milter_floor: C, does nothing, one read() for many packets):
#             the floor under any milter that reads headers and bodies;
#   python    an accept-all Python milter reading the same stages (Debian's
#             python3-milter, run by /usr/bin/python3), the issue's peer;
#   sluice    sluice-milter (limits that never trip, the burst detectors
#             running on every body, no DNS lists).
# 16 and 64 concurrent sessions (smtp-source opens one session per
# message), each message a corpus-sized one (the SpamAssassin corpus
# message of median size). Also sluice-milter's own CPU per message (from
# /proc/PID/stat) and the whole machine's CPU per message in each mode
# (from /proc/stat: Postfix, the load, the milter).
# Usage: benchmarks/milter_bench.sh [MESSAGES]
# Environment: MODES (default "none envelope floor python sluice"), ROUNDS
# (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
messages="${1:-3000}"
bash scripts/setup.sh
data="$(bash benchmarks/corpus.sh)"
bazel build --config=opt //bindings/milter:sluice-milter //bindings/cli:sluice \
  //benchmarks:milter_floor >/dev/null 2>&1
bin="$(bazel info --config=opt bazel-bin 2>/dev/null)"
source tests/postfix/env.sh
WORK="$(mktemp -d /tmp/sluice-milter-bench.XXXXXX)"
sl_env_init "$WORK"
PY_PID=""
FLOOR_PIDS=()
cleanup() {
  sl_postfix_stop
  sl_policyd_stop
  for p in "${FLOOR_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [[ -n "$PY_PID" ]] && kill "$PY_PID" 2>/dev/null && sleep 1 && kill -9 "$PY_PID" 2>/dev/null
  rm -rf "$SL_RUN" "$WORK"
}
trap cleanup EXIT

# The message: the corpus's median-size one, as smtp-source's -F file.
msg=$(find "$data/spam-2" "$data/easy-ham-2" -type f -name "*.txt" -printf '%s %p\n' | sort -n |
  awk '{ a[NR] = $2 } END { print a[int(NR / 2)] }')
grep -v '^From ' "$msg" | sed 's/$/\r/' >"$WORK/message.eml"
size=$(stat -c %s "$WORK/message.eml")

SLUICE_PORT=$(sl_free_port)
PY_PORT=$(sl_free_port)
cat >"$WORK/sluice.conf" <<CONF
level { name: "mailbox" limit { window: "1h" max: 100000000 } }
abuse {
  same_size { threshold: 100000000 }
  near_duplicate { threshold: 100000000 }
}
policy { trusted_network: "127.0.0.0/8" }
CONF
export SL_POLICYD="$bin/bindings/milter/sluice-milter"
SL_POLICYD_EXTRA=(--milter "inet:$SLUICE_PORT@127.0.0.1")
sl_policyd_start "$WORK/sluice.conf" >/dev/null 2>&1 || true
sl_wait_port "$SLUICE_PORT" 10
cat >"$WORK/accept.py" <<'PY'
import sys
import Milter
# It takes every stage sluice takes (the headers and the body too), so it
# gets the same packets: what any milter that reads messages pays.
class Accept(Milter.Base):
    def envfrom(self, mailfrom, *params):
        return Milter.CONTINUE
    def envrcpt(self, to, *params):
        return Milter.CONTINUE
    def header(self, name, value):
        return Milter.CONTINUE
    def eoh(self):
        return Milter.CONTINUE
    def body(self, chunk):
        return Milter.CONTINUE
    def eom(self):
        return Milter.CONTINUE
Milter.factory = Accept
Milter.runmilter("accept", sys.argv[1], 600)
PY
/usr/bin/python3 "$WORK/accept.py" "inet:$PY_PORT@127.0.0.1" >"$WORK/py.log" 2>&1 &
PY_PID=$!
sl_wait_port "$PY_PORT" 10
FLOOR_PORT=$(sl_free_port)
"$bin/benchmarks/milter_floor" "$FLOOR_PORT" &
FLOOR_PIDS+=($!)
ENVELOPE_PORT=$(sl_free_port)
"$bin/benchmarks/milter_floor" "$ENVELOPE_PORT" --envelope &
FLOOR_PIDS+=($!)
sl_wait_port "$FLOOR_PORT" 10
sl_wait_port "$ENVELOPE_PORT" 10
SL_POSTCONF_EXTRA=("smtpd_recipient_restrictions = permit_mynetworks, reject"
  "smtpd_end_of_data_restrictions =" "default_process_limit = 200"
  "milter_default_action = tempfail" "milter_protocol = 6")
sl_postfix_start >/dev/null || { cat "$WORK/postfix.log"; exit 1; }

set_milter() {  # "" | inet:127.0.0.1:PORT
  postconf -c "$SL_PF" -e "smtpd_milters = $1"
  postfix -c "$SL_PF" reload >/dev/null 2>&1
  sleep 2
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$SL_POLICYD_PID/stat"; }
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }  # busy: user nice system irq softirq
per_message_us() {  # TICKS: CPU microseconds per message of a run
  awk -v t="$1" -v hz="$(getconf CLK_TCK)" -v n="$messages" 'BEGIN { printf "%.0f", t / hz * 1e6 / n }'
}
queued() { grep -c 'from=<bench@acme.example>, size=.*(queue active)' "$WORK/maillog" 2>/dev/null; }
run() {  # SESSIONS: messages/s (only if every message was queued; else "FAILED")
  local t0 t1 q0 i
  q0=$(queued)
  t0=$(date +%s.%N)
  timeout 600 smtp-source -s "$1" -m "$messages" -d -F "$WORK/message.eml" -f bench@acme.example \
    -t rcpt@remote.example -M client.example "127.0.0.1:$SL_SMTP_PORT" >/dev/null 2>&1
  t1=$(date +%s.%N)
  for ((i = 0; i < 100; i++)); do  # the queue manager logs the last ones
    [[ $(($(queued) - q0)) -ge "$messages" ]] && break
    sleep 0.1
  done
  if [[ $(($(queued) - q0)) -lt "$messages" ]]; then
    echo "FAILED($(($(queued) - q0))-queued)"
    return
  fi
  awk -v a="$t0" -v b="$t1" -v n="$messages" 'BEGIN { printf "%.0f", n / (b - a) }'
}

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')  machine: $(nproc) vCPU $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')  commit: $(git rev-parse --short HEAD)"
echo "message: $(basename "$msg") ($size bytes), $messages messages per run, Postfix $(postconf -d -h mail_version)"
declare -A rate
modes="${MODES:-none envelope floor python sluice}"
for round in $(seq "${ROUNDS:-3}"); do
  for sessions in 16 64; do
    for mode in $modes; do
      case "$mode" in
        none) set_milter "" ;;
        envelope) set_milter "inet:127.0.0.1:$ENVELOPE_PORT" ;;
        floor) set_milter "inet:127.0.0.1:$FLOOR_PORT" ;;
        python) set_milter "inet:127.0.0.1:$PY_PORT" ;;
        sluice) set_milter "inet:127.0.0.1:$SLUICE_PORT" ;;
      esac
      c0=$(cpu_ticks)
      m0=$(machine_ticks)
      r=$(run "$sessions")
      c1=$(cpu_ticks)
      m1=$(machine_ticks)
      rate[$mode.$sessions]="${rate[$mode.$sessions]:-} $r"
      m=$(per_message_us "$((m1 - m0))")
      rate[machine.$mode.$sessions]="${rate[machine.$mode.$sessions]:-} $m"
      if [[ "$mode" == sluice ]]; then
        cpu=$(per_message_us "$((c1 - c0))")
        rate[cpu.$sessions]="${rate[cpu.$sessions]:-} $cpu"
      fi
    done
  done
done
for sessions in 16 64; do
  echo "$sessions sessions: messages/s (rounds 1-${ROUNDS:-3})"
  for mode in $modes; do
    echo "  $mode:${rate[$mode.$sessions]}   (machine CPU µs/message:${rate[machine.$mode.$sessions]})"
  done
  echo "  sluice-milter CPU µs/message:${rate[cpu.$sessions]:-}"
done
echo "sluice counted: $("$bin/bindings/cli/sluice" --socket "$SL_ADMIN" usage bench@acme.example | awk '$3 == "messages" { print $5; exit }') messages"
