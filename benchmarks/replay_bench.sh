#!/usr/bin/env bash
# sluice replay's speed on a generated Postfix log: N messages of 5 lines
# each (smtpd's client with a login, cleanup, qmgr's sender, a delivery,
# qmgr's removal), 5,000 senders in 100 domains over a day, replayed
# through the embedded default config. Prints lines per minute.
# Usage: benchmarks/replay_bench.sh [MESSAGES]   (default 240000: 1.2 M lines)
set -euo pipefail
cd "$(dirname "$0")/.."
messages="${1:-240000}"
bash scripts/setup.sh
bazel build --config=opt //bindings/cli:sluice >/dev/null 2>&1
bin="$(bazel info --config=opt bazel-bin 2>/dev/null)"
work="$(mktemp -d /tmp/sluice-replay-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
awk -v n="$messages" 'BEGIN {
  srand(7);
  for (i = 0; i < n; i++) {
    s = int(i * 86400 / n);
    t = sprintf("Dec  6 %02d:%02d:%02d", int(s / 3600), int(s % 3600 / 60), s % 60);
    id = sprintf("Q%07X", i);
    u = int(rand() * 5000);
    who = sprintf("user%d@dom%d.example", u, u % 100);
    printf "%s mx postfix/smtpd[100]: %s: client=c%d.example[198.51.%d.%d], sasl_method=PLAIN, sasl_username=%s\n", t, id, u, u % 250, u % 200 + 1, who;
    printf "%s mx postfix/cleanup[101]: %s: message-id=<%d@dom.example>\n", t, id, i;
    printf "%s mx postfix/qmgr[102]: %s: from=<%s>, size=%d, nrcpt=%d (queue active)\n", t, id, who, 1000 + i % 5000, 1 + i % 3;
    printf "%s mx postfix/smtp[103]: %s: to=<r%d@remote.example>, relay=mx.remote.example[203.0.113.5]:25, delay=0.1, status=sent (250 ok)\n", t, id, i;
    printf "%s mx postfix/qmgr[102]: %s: removed\n", t, id;
  }
}' >"$work/mail.log"
"$bin/bindings/cli/sluice" default-config >"$work/sluice.conf"
lines=$(wc -l <"$work/mail.log")
start=$(date +%s.%N)
"$bin/bindings/cli/sluice" replay "$work/sluice.conf" "$work/mail.log" >"$work/report.txt"
end=$(date +%s.%N)
awk -v l="$lines" -v a="$start" -v b="$end" 'BEGIN {
  printf "replayed %d lines in %.2f s: %.2f M lines per minute\n", l, b - a, l / (b - a) * 60 / 1e6 }'
tail -12 "$work/report.txt"
