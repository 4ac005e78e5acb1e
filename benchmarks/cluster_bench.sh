#!/usr/bin/env bash
# Limits shared by many hosts through Redis, side by side at 128 concurrent
# connections, one load generator (benchmarks/policy_load.cc), one real
# redis-server (all on 127.0.0.1, stopped by PID):
#   local      sluice-policyd counting alone (no Redis)
#   sync       sluice-policyd with its counters synced through Redis
#              (ratelimit/cluster: leases, one batched script call per
#              interval)
#   per-request  benchmarks/per_request_policy_server.cc: one Redis script
#              call per level per message (rspamd's ratelimit and
#              envoyproxy/ratelimit's design), pipelined per message
#   echo       benchmarks/echo_policy_server.cc: answers every request
#              without reading it (no parsing, no limits, no Redis): the
#              most any policy server can do on this machine with this
#              load generator beside it (hot set only)
# Three levels (server, domain, mailbox), the mailbox limit binding.
# Two loads: a hot set (100 senders, limit far away: throughput and Redis
# commands per admitted message) and a binding limit (1,000 senders, 50
# each per hour, 100 offered each: throughput and how far the admitted
# counts are from the limit, "wrong").
# Usage: [ROUNDS=3] benchmarks/cluster_bench.sh [REQUESTS]
set -euo pipefail
cd "$(dirname "$0")/.."
requests="${1:-200000}"
bash scripts/setup.sh
bazel build --config=opt //bindings/postfix:sluice-policyd //benchmarks:policy_load \
  //benchmarks:per_request_policy_server //benchmarks:echo_policy_server >/dev/null 2>&1
bin="$(bazel info --config=opt bazel-bin 2>/dev/null)"
source benchmarks/servers.sh
bench_init sluice-cluster-bench

rport=$(bench_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  --loglevel warning >"$work/redis.log" 2>&1 &
redis_pid=$!
bench_track "$redis_pid"
for _ in $(seq 100); do redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done

conf() {  # LIMIT [cluster]
  cat <<CONF
level { name: "server" limit { window: "1h" max: 1000000000 } }
level { name: "domain" limit { window: "1h" max: 1000000000 } }
level { name: "mailbox" limit { window: "1h" max: $1 } }
policy { trusted_network: "192.0.2.0/24" }
CONF
  if [[ "${2:-}" == cluster ]]; then
    echo "cluster { server: \"127.0.0.1:$rport\" hosts: 1 }"
  fi
}
# Commands clients sent (script calls, PING, SCRIPT LOAD, CLUSTER SLOTS,
# AUTH), and all commands Redis ran (with those the scripts ran).
redis_calls() {
  redis-cli -p "$rport" info commandstats | tr -d '\r' |
    awk -F'[=:,]' '/^cmdstat_/ {all += $3}
      /^cmdstat_(evalsha|eval|ping|script|cluster|auth)/ {sent += $3}
      END {print sent + 0, all + 0}'
}
# CPU seconds redis-server used so far.
redis_cpu() { awk '{print ($14 + $15) / 100}' "/proc/$redis_pid/stat"; }

# run NAME KIND SENDERS LIMIT: starts the server, runs the load, stops it;
# prints the load's line and Redis commands per request.
run() {
  local name=$1 kind=$2 senders=$3 limit=$4 port pid
  port=$(bench_port)
  case "$kind" in
    local | sync)
      conf "$limit" "$([[ $kind == sync ]] && echo cluster)" >"$work/$name.conf"
      "$bin/bindings/postfix/sluice-policyd" --config "$work/$name.conf" \
        --listen "inet:127.0.0.1:$port" 2>"$work/$name.log" &
      ;;
    per-request)
      "$bin/benchmarks/per_request_policy_server" "$port" "$rport" "$limit" 2>"$work/$name.log" &
      ;;
    echo)
      "$bin/benchmarks/echo_policy_server" "$port" 2 2>"$work/$name.log" &
      ;;
  esac
  pid=$!
  bench_track "$pid"
  bench_wait_tcp "$port"
  redis-cli -p "$rport" flushall >/dev/null
  redis-cli -p "$rport" config resetstat >/dev/null
  local cpu0
  cpu0=$(redis_cpu)
  local line
  line=$("$bin/benchmarks/policy_load" --target "127.0.0.1:$port" --connections 128 \
    --senders "$senders" --requests "$requests" --limit "$limit" --name "$name")
  sleep 0.5  # the last sync round
  local sent all cpu
  read -r sent all < <(redis_calls)
  cpu=$(awk -v a="$cpu0" -v b="$(redis_cpu)" 'BEGIN {printf "%.2f", b - a}')
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  printf '%s | redis: %s commands sent (%s per request), %s run with scripts, %s CPU s\n' \
    "$line" "$sent" "$(awk -v c="$sent" -v r="$requests" 'BEGIN {printf "%.4f", c / r}')" "$all" "$cpu"
}

# ROUNDS (default 3) runs every row in turn that many times: this VM's speed
# moves between minutes, so a ratio is only taken within one round, and the
# summary gives each row's median and the median of the rounds' ratios.
rounds="${ROUNDS:-3}"
declare -A rate
echo "# $(date -u +%F) $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
for round in $(seq "$rounds"); do
  echo "## round $round: hot set: 100 senders, limit far away, $requests requests, 128 connections"
  for k in local sync per-request echo; do
    line=$(run "hot-$k" "$k" 100 100000000)
    echo "$line"
    rate[hot-$k]+="$(awk '{print $6}' <<<"$line") "
  done
  echo "## round $round: binding: 1000 senders, 50 per hour each, $requests requests, 128 connections"
  for k in local sync per-request; do
    line=$(run "bind-$k" "$k" 1000 50)
    echo "$line"
    rate[bind-$k]+="$(awk '{print $6}' <<<"$line") "
  done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# ratios A B: the rounds' ratios of row A to row B, one per round.
ratios() {
  paste -d' ' <(tr ' ' '\n' <<<"${rate[$1]}" | grep .) <(tr ' ' '\n' <<<"${rate[$2]}" | grep .) |
    awk '{printf "%.2f ", $1 / $2}'
}
echo "## summary over $rounds rounds: median req/s (each round's)"
for row in hot-local hot-sync hot-per-request hot-echo bind-local bind-sync bind-per-request; do
  printf '%-18s %8s   (%s)\n' "$row" "$(median <<<"${rate[$row]}")" "${rate[$row]% }"
done
for load in hot bind; do
  r=$(ratios "$load-sync" "$load-per-request")
  printf '%s: synced / per-request, median of the rounds %sx (rounds: %s); synced / local %sx\n' \
    "$load" "$(median <<<"$r")" "${r% }" "$(median <<<"$(ratios "$load-sync" "$load-local")")"
done
r=$(ratios hot-echo hot-per-request)
printf 'hot: echo (the ceiling) / per-request, median %sx (rounds: %s)\n' "$(median <<<"$r")" "${r% }"
