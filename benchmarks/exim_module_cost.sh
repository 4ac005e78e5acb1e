#!/usr/bin/env bash
# What sluice's Exim module costs a process, outside Exim (see
# benchmarks/exim_module_cost.c): a new process's start, loaded by the
# process or preloaded (with and without the config read beforehand), and
# the cost per message in a process that sends 250 or 2,000.
# Usage: benchmarks/exim_module_cost.sh [PROCESSES]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-40}"
bash scripts/setup.sh
bazel build --config=opt //bindings/exim:sluice_exim.so >/dev/null 2>&1
bin="$(bazel info --config=opt bazel-bin 2>/dev/null)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -std=c11 -Wall -Wextra -rdynamic benchmarks/exim_module_cost.c -o "$work/cost" -ldl
cp "$bin/bindings/exim/sluice_exim.so" "$work/sluice_exim.so"
cat >"$work/sluice.conf" <<CONF
level { name: "mailbox" limit { window: "1h" max: 100000000 } }
abuse {
  near_duplicate { threshold: 100000000 }
  same_size { threshold: 100000000 }
  campaign { threshold: 100000000 }
}
policy { trusted_network: "127.0.0.0/8" }
table { path: "$work/counters.table" }
CONF
printf 'id-D\nHello, this is message text.\r\n' >"$work/body-D"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')  machine: $(nproc) vCPU  commit: $(git rev-parse --short HEAD)"
run() { "$work/cost" "$work/sluice_exim.so" "$work/sluice.conf" "$work/body-D" "$@"; }
for round in 1 2 3; do
  run start child "$n"
  run start preload "$n"
  SLUICE_EXIM_CONFIG="$work/sluice.conf" run start preload "$n"
done
for m in 250 2000; do
  rm -f "$work/counters.table"
  run messages "$m"
done
