# Sourced by the benchmark scripts that start servers: a work directory,
# servers tracked by PID and stopped (TERM, then KILL) on exit, free ports.
#   bench_init NAME     creates $work (/tmp/NAME.XXXXXX, world-readable)
#   bench_track PID     stop this process on exit
#   bench_port [udp]    a free port on 127.0.0.1
#   bench_wait_tcp PORT waits (15 s at most) until PORT accepts connections
#   bench_lossy_dns ENTRIES PROXY-OPTIONS...
#                       a real rbldnsd serving zen.bl.test (127.0.0.2 and the
#                       extra ENTRIES listed) behind benchmarks/dns_proxy.py
#                       with PROXY-OPTIONS; sets $dns_port (the proxy's)
bench_init() {
  work="$(mktemp -d "/tmp/$1.XXXXXX")"
  chmod 0755 "$work"
  bench_pids=()
  trap bench_cleanup EXIT
}
bench_track() { bench_pids+=("$1"); }
bench_cleanup() {
  local p
  for p in "${bench_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in "$work"/*.pid; do [[ -f "$f" ]] && kill "$(cat "$f" 2>/dev/null)" 2>/dev/null || true; done
  sleep 1
  for p in "${bench_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
bench_port() {
  local kind="socket.SOCK_STREAM"
  [[ "${1:-}" == udp ]] && kind="socket.SOCK_DGRAM"
  python3 -c "import socket; s=socket.socket(socket.AF_INET, $kind); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"
}
bench_wait_tcp() {
  local deadline=$((SECONDS + 15))
  while ((SECONDS <= deadline)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "server on port $1 did not start" >&2
  return 1
}
bench_lossy_dns() {
  local entries="$1" p_rbl
  shift
  p_rbl=$(bench_port udp)
  dns_port=$(bench_port udp)
  mkdir -p "$work/zones"
  printf '%s\n' '$SOA 300 ns.bl.test. hostmaster.bl.test. 0 600 300 86400 60' '$TTL 300' \
    ':127.0.0.2:Listed $' 127.0.0.2 $entries >"$work/zones/bl.zone"
  chmod -R a+rX "$work/zones"
  rbldnsd -u rbldns -n -q -b "127.0.0.1/$p_rbl" -w "$work/zones" zen.bl.test:ip4set:bl.zone &
  bench_track $!
  python3 benchmarks/dns_proxy.py "$dns_port" "$p_rbl" "$@" &
  bench_track $!
}
