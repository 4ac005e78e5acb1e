#!/usr/bin/env bash
# Policy servers side by side, one load generator (benchmarks/policy_load.cc)
# speaking the Postfix policy protocol: sluice-policyd vs policyd-rate-limit
# and postfwd (Debian packages, installed here), a minimal Python
# dict-counting server (the floor) and a bare echo server answering DUNNO
# without parsing (the loopback limit). Every server is configured with the
# same per-sender limit (5 per hour); 1,000 senders; 1, 16 and 128
# concurrent connections. Everything on 127.0.0.1, stopped by PID.
# Usage: benchmarks/policy_bench.sh [REQUESTS_FAST] [REQUESTS_SLOW]
set -euo pipefail
cd "$(dirname "$0")/.."
fast="${1:-100000}"
slow="${2:-5000}"
limit=5
bash scripts/setup.sh
for p in policyd-rate-limit postfwd; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$p" >&2
  fi
done
bazel build --config=opt //bindings/postfix:sluice-policyd //benchmarks:policy_load \
  //benchmarks:echo_policy_server >/dev/null 2>&1
bin="$(bazel info --config=opt bazel-bin 2>/dev/null)"
source benchmarks/servers.sh
bench_init sluice-policy-bench

p_sluice=$(bench_port) p_prl=$(bench_port) p_pfw=$(bench_port) p_py=$(bench_port) p_echo=$(bench_port)
# The load's clients (192.0.2.0/24) submit outgoing mail: trusted, as
# mynetworks would be (mail from untrusted clients is inbound and not
# counted per sender).
cat >"$work/sluice.conf" <<CONF
level { name: "mailbox" limit { window: "1h" max: $limit } }
policy { trusted_network: "192.0.2.0/24" }
CONF
"$bin/bindings/postfix/sluice-policyd" --config "$work/sluice.conf" --listen "inet:127.0.0.1:$p_sluice" \
  2>"$work/sluice.log" &
bench_track $!
cat >"$work/prl.yaml" <<CONF
debug: False
user: "root"
group: "root"
pidfile: "$work/prl.pid"
sqlite_config:
    database: "$work/prl.sqlite3"
backend: 0
SOCKET: ["127.0.0.1", $p_prl]
limits:
    - [$limit, 3600]
limits_by_id: {}
limit_by_sasl: False
limit_by_sender: True
limit_by_ip: False
limited_networks: []
success_action: "dunno"
fail_action: "defer_if_permit Rate limit reached, retry later"
db_error_action: "dunno"
report: False
delay_to_close: 300
CONF
policyd-rate-limit --file "$work/prl.yaml" >"$work/prl.log" 2>&1 &
bench_track $!
# postfwd1: postfwd2's rate() did not limit anything in this setup (its
# separate cache daemon); postfwd1 keeps rates in its one process.
echo "id=RATE001; action=rate(sender/$limit/3600/450 4.7.1 sender rate exceeded)" >"$work/pfw.cf"
postfwd1 --daemon --file "$work/pfw.cf" --interface 127.0.0.1 --port "$p_pfw" --user nobody \
  --group nogroup --pidfile "$work/pfw.pid" >"$work/pfw.log" 2>&1
python3 benchmarks/python_floor_policy.py "$p_py" "$limit" >"$work/py.log" 2>&1 &
bench_track $!
"$bin/benchmarks/echo_policy_server" "$p_echo" 2 &
bench_track $!
for p in $p_sluice $p_prl $p_pfw $p_py $p_echo; do bench_wait_tcp "$p"; done

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) vCPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)"
echo "per-sender limit $limit/h, 1000 senders, requests: $fast (fast servers), $slow (peers)"
run() {  # NAME PORT REQUESTS LIMIT CONNS [policy_load options]
  "$bin/benchmarks/policy_load" --target "127.0.0.1:$2" --connections "$5" --senders 1000 \
    --requests "$3" --limit "$4" --name "$1" "${@:6}"
}
# Closed loop (each connection sends its next request as soon as the answer
# is in): throughput, and latency at saturation.
declare -A best
for c in 1 16 128; do
  for srv in "sluice-policyd $p_sluice $fast $limit" "policyd-rate-limit $p_prl $slow $limit" \
    "postfwd $p_pfw $slow $limit" "python-floor $p_py $fast $limit" \
    "echo-dunno $p_echo $fast 1000000000"; do
    read -r name port n lim <<<"$srv"
    line="$(run "$name" "$port" "$n" "$lim" "$c")"
    echo "$line"
    best[$name]="$(awk '{for (i = 1; i < NF; i++) if ($(i + 1) == "req/s") print int($i)}' <<<"$line")"
  done
done
# Open loop at 128 connections: every server offered half of its own
# closed-loop throughput for about 3 s; latency counted from each request's
# due time (so queueing behind a stall is charged to the server).
echo "open loop, 128 connections, offered load = half of each server's closed-loop req/s:"
for srv in "sluice-policyd $p_sluice $limit" "policyd-rate-limit $p_prl $limit" \
  "postfwd $p_pfw $limit" "python-floor $p_py $limit" "echo-dunno $p_echo 1000000000"; do
  read -r name port lim <<<"$srv"
  rate=$((best[$name] / 2))
  ((rate > 0)) || continue
  run "$name@$rate/s" "$port" $((rate * 3 + 1)) "$lim" 128 --rate "$rate" --seed 2
done
