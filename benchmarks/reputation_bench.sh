#!/usr/bin/env bash
# Reputation benchmarks in one run: sluice's DNS cache hit (1 and 2
# threads), a CIDR lookup in 100,000 prefixes, URL extraction, and a real
# unbound answering from its cache over loopback (unbound forwards
# bl.test to a real rbldnsd; the first query fills its cache, every
# measured one is a cache hit). Everything on 127.0.0.1, stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v unbound >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q unbound >&2
fi
bazel build --config=opt //reputation:reputation_benchmark >/dev/null 2>&1
bin="$(bazel info --config=opt bazel-bin 2>/dev/null)"
source benchmarks/servers.sh
bench_init sluice-rep-bench
rbl=$(bench_port udp)
ub=$(bench_port udp)
printf '$SOA 300 ns.bl.test. hostmaster.bl.test. 1 600 300 86400 60\n$TTL 3600\n:127.0.0.2:Listed\n127.0.0.2\n' >"$work/ip4.zone"
rbldnsd -u rbldns -n -b "127.0.0.1/$rbl" -w "$work" zen.bl.test:ip4set:ip4.zone >"$work/rbldnsd.log" 2>&1 &
bench_track $!
cat >"$work/unbound.conf" <<CONF
server:
  interface: 127.0.0.1
  port: $ub
  do-ip6: no
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "$work"
  pidfile: "$work/unbound.pid"
  use-syslog: no
  logfile: "$work/unbound.log"
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  local-zone: "test." nodefault
  module-config: "iterator"
  num-threads: 1
stub-zone:
  name: "bl.test"
  stub-addr: 127.0.0.1@$rbl
CONF
unbound -c "$work/unbound.conf" &
bench_track $!
for i in $(seq 1 50); do
  if grep -q 127.0.0.2 <<<"$(dig +short +tries=1 +time=1 -p "$ub" @127.0.0.1 2.0.0.127.zen.bl.test A 2>/dev/null)"; then
    break
  fi
  sleep 0.1
done
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) vCPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)"
echo "unbound $(unbound -V 2>/dev/null | awk 'NR == 1 {print $2}') on 127.0.0.1:$ub, rbldnsd on 127.0.0.1:$rbl"
"$bin/reputation/reputation_benchmark" --unbound "$ub" --benchmark_min_time=1 "$@"
