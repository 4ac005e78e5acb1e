#!/usr/bin/env bash
# Does DNS stall the daemon? sluice-policyd twice on the same load
# (benchmarks/policy_load.cc, closed loop, 16 and 128 connections): once
# without DNS lists, once with a list whose server (a real rbldnsd behind
# benchmarks/dns_proxy.py) never answers for the inbound clients' range
# 198.18.0.0/15. About 10% of the connections send inbound mail from a fresh
# address each time, so each of their requests waits its whole DNS budget;
# the rest send outgoing mail (trusted clients: no DNS). The figure: the
# other connections' throughput and p99 with the black hole against
# without lists. Everything on 127.0.0.1, stopped by PID.
# Usage: benchmarks/dns_stall_bench.sh [REQUESTS]
set -euo pipefail
cd "$(dirname "$0")/.."
requests="${1:-100000}"
bash scripts/setup.sh
bazel build --config=opt //bindings/postfix:sluice-policyd //benchmarks:policy_load >/dev/null 2>&1
bin="$(bazel info --config=opt bazel-bin 2>/dev/null)"
source benchmarks/servers.sh
bench_init sluice-dns-stall

# Queries for 198.x addresses (the inbound clients) are lost; the RFC 5782
# test points (127.x) are answered, so the list stays in service.
bench_lossy_dns "" --drop-label 198
p_proxy=$dns_port

base='level { name: "mailbox" limit { window: "1h" max: 1000000 } }
policy { trusted_network: "192.0.2.0/24" }'
echo "$base" >"$work/off.conf"
cat >"$work/on.conf" <<CONF
$base
reputation {
  list { zone: "zen.bl.test" kind: SPAMHAUS }
  nameserver: "127.0.0.1"
  port: $p_proxy
  timeout: "500ms"
  budget: "2s"
}
CONF

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) vCPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)"
echo "requests: $requests outgoing per run; ~10% of the connections send inbound mail meanwhile"
for mode in off on; do
  port=$(bench_port)
  "$bin/bindings/postfix/sluice-policyd" --config "$work/$mode.conf" \
    --listen "inet:127.0.0.1:$port" 2>"$work/$mode.log" &
  pid=$!
  bench_track "$pid"
  bench_wait_tcp "$port"
  sleep 1  # the list health check (beside the loop) is done
  for c in 16 128; do
    inbound=$(((c + 9) / 10))
    "$bin/benchmarks/policy_load" --target "127.0.0.1:$port" --connections "$c" \
      --inbound-connections "$inbound" --senders 1000 --requests "$requests" \
      --limit 1000000000 --name "lists-$mode"
  done
  kill "$pid"
  wait "$pid" 2>/dev/null || true
done
