#!/usr/bin/env bash
# Soak: sluice-policyd for a few minutes under mixed traffic, everything on
# 127.0.0.1, every loop bounded in time, every process stopped by PID.
#   - outgoing load (benchmarks/policy_load.cc, closed loop, 16 connections,
#     fresh senders each round): "wrong" counts answers that disagree with
#     the per-sender limit, and must stay 0
#   - inbound mail from fresh addresses on 2 of those connections, asking a
#     DNS list whose server (rbldnsd behind benchmarks/dns_proxy.py) loses
#     half of all queries
#   - garbage requests, and floods of 200 connections opened and dropped
#   - a reload (SIGHUP) every second
# The daemon must survive, make no wrong decision, and keep its resident
# memory bounded: at most 128 MiB above the level after the first round
# (open transactions of RCPT-only clients are kept up to their cap, 65,536
# of about 1 KB), and no growth in the last third of the run beyond 16 MiB
# over the middle third's peak (a leak keeps growing; a cap does not).
# Usage: benchmarks/soak.sh [SECONDS]   (default 180)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-180}"
bash scripts/setup.sh
bazel build --config=opt //bindings/postfix:sluice-policyd //benchmarks:policy_load >/dev/null 2>&1
bin="$(bazel info --config=opt bazel-bin 2>/dev/null)"
source benchmarks/servers.sh
bench_init sluice-soak

port=$(bench_port)
bench_lossy_dns "198.18.0.0/24" --drop-fraction 0.5
p_proxy=$dns_port
limit=50
cat >"$work/sluice.conf" <<CONF
level { name: "mailbox" limit { window: "1h" max: $limit } }
level { name: "client_ip" limit { window: "1h" max: 100000 } }
policy { trusted_network: "192.0.2.0/24" }
reputation {
  list { zone: "zen.bl.test" kind: SPAMHAUS }
  nameserver: "127.0.0.1"
  port: $p_proxy
  timeout: "300ms"
  budget: "1s"
  failure_ttl: "5s"
}
CONF
"$bin/bindings/postfix/sluice-policyd" --config "$work/sluice.conf" --listen "inet:127.0.0.1:$port" \
  --table "$work/counters.table" --maintain-every 1 2>"$work/policyd.log" &
daemon=$!
bench_track "$daemon"
bench_wait_tcp "$port"

rss() { awk '/^VmRSS/ { print int($2 / 1024) }' "/proc/$daemon/status" 2>/dev/null || echo 0; }
end=$((SECONDS + seconds))

# Reloads, garbage and connection floods beside the load, until the end.
(
  while ((SECONDS < end)); do
    kill -HUP "$daemon" 2>/dev/null || exit 0
    sleep 1
  done
) &
reloader=$!
bench_track "$reloader"
timeout $((seconds + 30)) python3 - "$port" "$seconds" >"$work/abuse.log" 2>&1 <<'PY' &
import random, socket, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
rng = random.Random(7)
end = time.time() + seconds
floods = garbage = 0
while time.time() < end:
    # A flood: 200 connections opened and dropped at once.
    conns = []
    for _ in range(200):
        try:
            conns.append(socket.create_connection(("127.0.0.1", port), 2))
        except OSError:
            break
    for c in conns:
        c.close()
    floods += 1
    # Garbage on one connection: binary, over-long lines, half requests.
    try:
        s = socket.create_connection(("127.0.0.1", port), 2)
        s.settimeout(2)
        for _ in range(20):
            kind = rng.randrange(3)
            if kind == 0:
                s.sendall(bytes(rng.randrange(256) for _ in range(200)) + b"\n\n")
            elif kind == 1:
                s.sendall(b"request=smtpd_access_policy\nsender=" + b"x" * 5000 + b"\n\n")
            else:
                s.sendall(b"protocol_state=RCPT\n\n")
            garbage += 1
        s.close()
    except OSError:
        pass
    time.sleep(0.2)
print(f"floods {floods} garbage requests {garbage}")
PY
abuser=$!
bench_track "$abuser"

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')  machine: $(nproc) vCPU  seconds: $seconds"
rounds=0 wrong=0 base_rss=0 max_rss=0
samples=()
while ((SECONDS < end)); do
  line=$("$bin/benchmarks/policy_load" --target "127.0.0.1:$port" --connections 16 \
    --inbound-connections 2 --senders 200 --requests 20000 --limit "$limit" --name soak)
  rounds=$((rounds + 1))
  w=$(awk '{ for (i = 1; i < NF; i++) if ($i == "wrong") print $(i + 1) }' <<<"$line" | head -1)
  wrong=$((wrong + ${w:-1}))
  r=$(rss)
  ((rounds == 1)) && base_rss=$r
  ((r > max_rss)) && max_rss=$r
  samples+=("$r")
  ((rounds % 10 == 1)) && echo "round $rounds: $(head -1 <<<"$line" | cut -c1-110)  rss ${r} MiB"
done
wait "$reloader" "$abuser" 2>/dev/null || true
alive=$(kill -0 "$daemon" 2>/dev/null && echo yes || echo no)
echo "rounds $rounds  wrong $wrong  rss after round 1: ${base_rss} MiB, max ${max_rss} MiB  alive $alive"
echo "abuse: $(cat "$work/abuse.log")"
echo "reloads logged: $(grep -c 'reloaded' "$work/policyd.log")  bad requests logged: $(grep -c 'bad policy request' "$work/policyd.log")"
n=${#samples[@]}
mid_peak=0 late_peak=0
for ((i = n / 3; i < 2 * n / 3; i++)); do ((samples[i] > mid_peak)) && mid_peak=${samples[i]}; done
for ((i = 2 * n / 3; i < n; i++)); do ((samples[i] > late_peak)) && late_peak=${samples[i]}; done
echo "rss peaks: middle third ${mid_peak} MiB, last third ${late_peak} MiB"
ok=yes
[[ $alive == yes ]] || ok=no
((wrong == 0)) || ok=no
((max_rss <= base_rss + 128)) || ok=no
((late_peak <= mid_peak + 16)) || ok=no
echo "soak: $ok"
[[ $ok == yes ]]
