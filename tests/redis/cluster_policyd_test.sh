#!/usr/bin/env bash
# Three sluice-policyd on 127.0.0.1 as three relays sharing one
# subscription limit (1000/h) through a real redis-server (started here,
# stopped by PID). 5000 messages offered across them: the total admitted
# stays within the documented bound and Redis ends counting exactly what
# was admitted. Then Redis is killed: no request waits, each relay holds
# its share (ceil(1000/3) of its own window), /metrics says fallback; Redis
# returns: what was admitted meanwhile is counted there, once.
#
# With the argument "cluster", Redis is a 3-master Redis Cluster (the
# relays know one seed) and only the first part runs (the outage is
# tests/redis/redis_store_test.cc's and cluster_failover_test.cc's).
set -euo pipefail
MODE="${1:-single}"
RUNFILES="${RUNFILES_DIR:-$0.runfiles}/sluice"
POLICYD="$RUNFILES/bindings/postfix/sluice-policyd"
SLUICE="$RUNFILES/bindings/cli/sluice"
PY=/usr/bin/python3
DIR=$(mktemp -d /tmp/sluice-cluster.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$DIR"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

RPORT=$(free_port)
start_redis() {
  redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    --loglevel warning --dir "$DIR" >"$DIR/redis.log" 2>&1 &
  RPID=$!
  PIDS+=("$RPID")
  for _ in $(seq 100); do
    redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.05
  done
  fail "redis-server did not start"
}
NODES=()
if [[ "$MODE" == cluster ]]; then
  # Three masters; a node also listens on port + 10000 (its bus).
  while ((${#NODES[@]} < 3)); do
    p=$(free_port)
    ((p + 10000 <= 65535)) || continue
    mkdir -p "$DIR/n$p"
    redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
      --cluster-enabled yes --cluster-config-file "$DIR/n$p/nodes.conf" \
      --cluster-node-timeout 1000 --dir "$DIR/n$p" --loglevel warning >"$DIR/n$p.log" 2>&1 &
    PIDS+=($!)
    NODES+=("$p")
  done
  for p in "${NODES[@]}"; do
    for _ in $(seq 100); do
      redis-cli -p "$p" ping 2>/dev/null | grep -q PONG && break
      sleep 0.05
    done
  done
  timeout 60 redis-cli --cluster create "${NODES[@]/#/127.0.0.1:}" --cluster-replicas 0 \
    --cluster-yes >"$DIR/create.log" 2>&1 || fail "redis-cli --cluster create: $(cat "$DIR/create.log")"
  for _ in $(seq 200); do
    redis-cli -p "${NODES[0]}" cluster info | grep -q 'cluster_state:ok' && break
    sleep 0.1
  done
  RPORT="${NODES[1]}"  # the relays' seed
  REDIS_CLUSTER="redis_cluster: true"
else
  start_redis
  NODES=("$RPORT")
  REDIS_CLUSTER=""
fi

cat >"$DIR/sluice.conf" <<CONF
level {
  name: "subscription"
  limit { metric: MESSAGES window: "1h" max: 1000 }
}
level { name: "domain" }
level {
  name: "mailbox"
  limit { metric: MESSAGES window: "1h" max: 100000 }
}
entity { level: "domain" name: "acme.example" parent: "acme" }
entity { level: "subscription" name: "acme" }
entity { level: "domain" name: "bakery.example" parent: "bakery" }
entity { level: "subscription" name: "bakery" }
cluster {
  server: "127.0.0.1:$RPORT"
  $REDIS_CLUSTER
  hosts: 3
  shared_level: "subscription"
  interval: "100ms"
}
CONF

PORTS=()
MPORTS=()
for i in 0 1 2; do
  p=$(free_port)
  m=$(free_port)
  "$POLICYD" --config "$DIR/sluice.conf" --listen "inet:127.0.0.1:$p" --metrics "127.0.0.1:$m" \
    --table "$DIR/table$i" --abuse-table "$DIR/abuse$i" --threads 2 \
    --admin-socket "$DIR/admin$i.sock" >"$DIR/policyd$i.log" 2>&1 &
  PIDS+=($!)
  PORTS+=("$p")
  MPORTS+=("$m")
done
for p in "${PORTS[@]}"; do
  for _ in $(seq 100); do
    "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $p), 1)" 2>/dev/null && break
    sleep 0.05
  done
done

# offer DOMAIN N: N messages round-robin over the three relays (one RCPT
# request each, a new transaction each); prints "admitted max_latency_ms".
offer() {
  timeout 120 "$PY" - "$1" "$2" "${PORTS[@]}" <<'PY'
import socket, sys, time, threading
domain, n, ports = sys.argv[1], int(sys.argv[2]), [int(p) for p in sys.argv[3:]]
lock = threading.Lock()
admitted = [0]
worst = [0.0]
def run(k):
    conns = [socket.create_connection(("127.0.0.1", p), 5) for p in ports]
    for c in conns:
        c.settimeout(5)
    for i in range(k, n, 4):
        c = conns[i % 3]
        req = ("request=smtpd_access_policy\nprotocol_state=RCPT\nsender=user%d@%s\n"
               "recipient=r@example.net\nclient_address=127.0.0.1\ninstance=%s-%d\n\n"
               % (i % 50, domain, domain, i)).encode()
        t0 = time.monotonic()
        c.sendall(req)
        got = b""
        while not got.endswith(b"\n\n"):
            chunk = c.recv(4096)
            if not chunk:
                raise SystemExit("connection closed")
            got += chunk
        dt = (time.monotonic() - t0) * 1000
        with lock:
            worst[0] = max(worst[0], dt)
            if b"action=DUNNO" in got or b"action=OK" in got:
                admitted[0] += 1
        time.sleep(0.003)  # spread over a few seconds: tens of sync intervals
ts = [threading.Thread(target=run, args=(k,)) for k in range(4)]
for t in ts: t.start()
for t in ts: t.join()
print(admitted[0], int(worst[0]))
PY
}
# What Redis counts for a subscription (all bucket fields; the key lives
# on one node of a Cluster).
counted() {
  local key n
  for n in "${NODES[@]}"; do
    key=$(redis-cli -p "$n" --scan --pattern "sluice:{subscription:$1}:*" | head -1)
    [[ -n "$key" ]] && break
  done
  [[ -n "$key" ]] || { echo 0; return; }
  redis-cli -p "$n" hgetall "$key" | "$PY" -c '
import sys
f = sys.stdin.read().split("\n")
print(sum(int(f[i + 1]) for i in range(0, len(f) - 1, 2) if f[i].lstrip("-").isdigit()))'
}

# 1. Redis up: the shared limit holds across the three relays.
read -r A1 W1 < <(offer acme.example 5000)
echo "acme: admitted $A1 of 5000 (slowest answer ${W1} ms)"
BOUND=48  # N * F = 3 * floor(1000 / 60)
((A1 <= 1000 + BOUND)) || fail "admitted $A1 > 1000 + $BOUND"
((A1 >= 1000 - BOUND)) || fail "admitted $A1 < 1000 - $BOUND"
sleep 1.5  # leases expire and are given back
C1=$(counted acme)
echo "acme: Redis counts $C1"
((C1 == A1)) || fail "Redis counts $C1, admitted $A1"
# metric RELAY VALUE: /metrics of a relay shows sluice_cluster_fallback
# VALUE (asked up to ten times: a loaded machine may delay a round).
metric() {
  local m
  for _ in $(seq 10); do
    m=$(curl -s "http://127.0.0.1:${MPORTS[$1]}/metrics")
    grep -q "^sluice_cluster_fallback $2" <<<"$m" && return 0
    sleep 0.1
  done
  fail "metrics of relay $1: fallback is not $2: $(echo "$m" | grep cluster)"
}
metric 0 0
# explain: this relay's own usage beside the global one.
E=$("$SLUICE" --socket "$DIR/admin0.sock" usage subscription:acme)
echo "$E"
grep -q GLOBAL <<<"$E" || fail "usage shows no GLOBAL column"
LOCAL=$(echo "$E" | awk '$1 == "subscription" {print $5}')
GLOBAL=$(echo "$E" | awk '$1 == "subscription" {print $7}')
((LOCAL > 0 && LOCAL < A1)) || fail "relay 0's own usage $LOCAL (of $A1)"
((GLOBAL >= A1 - 3)) || fail "global usage $GLOBAL, admitted $A1"
if [[ "$MODE" == cluster ]]; then
  echo PASS
  exit 0
fi

# 2. Redis killed: nothing waits; each relay holds its share.
kill -9 "$RPID"
wait "$RPID" 2>/dev/null || true
sleep 0.3
read -r A2 W2 < <(offer bakery.example 3000)
echo "bakery, Redis down: admitted $A2 of 3000 (slowest answer ${W2} ms)"
((A2 <= 3 * 334)) || fail "admitted $A2 > 3 * 334 with Redis down"
((A2 >= 3 * 334 - 3)) || fail "admitted $A2: the fallback shares were not used"
((W2 < 1000)) || fail "a request waited ${W2} ms with Redis down"
metric 1 1

# 3. Redis back (empty: it kept nothing): the relays count what they
# admitted meanwhile, once.
start_redis
sleep 3.5  # the reconnect backoff (at most 2 s), a sync, the leases given back
C2=$(counted bakery)
echo "bakery: Redis counts $C2 after its return"
((C2 == A2)) || fail "Redis counts $C2 after the outage, admitted $A2"
metric 2 0
echo PASS
