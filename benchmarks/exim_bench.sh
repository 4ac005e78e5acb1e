#!/usr/bin/env bash
# Exim with sluice's module vs Exim's own `ratelimit` ACL condition vs no
# limit, one run: a real Exim 4.96 heavy daemon on 127.0.0.1 (unpacked by
# scripts/setup.sh; messages stay queued), 16 concurrent SMTP sessions, each
# sending its messages over one connection (Exim 4.96 holds its QUIT reply
# ~200 ms), from 100 senders in turn. Then the same per-sender limit in each
# (10 messages an hour, 20 tries per sender): how many each admits per sender.
# Usage: benchmarks/exim_bench.sh [MESSAGES]
# Environment: MODES (default: none ratelimit sluice preload socket), ROUNDS
# (3), PER_CONNECTION (messages per SMTP connection; default: all of a
# session's).
set -euo pipefail
cd "$(dirname "$0")/.."
messages="${1:-4000}"
bash scripts/setup.sh
bazel build --config=opt //bindings/exim:sluice_exim.so //bindings/postfix:sluice-policyd >/dev/null 2>&1
bin="$(bazel info --config=opt bazel-bin 2>/dev/null)"
source benchmarks/servers.sh
bench_init sluice-exim-bench
EXIM_SRC="${SLUICE_EXIM_ROOT:-$HOME/.cache/sluice-exim}/root/usr/sbin/exim4"
install -m 0755 "$EXIM_SRC" "$work/exim4"
install -m 0755 "$bin/bindings/exim/sluice_exim.so" "$work/sluice_exim.so"

# mode LIMIT: writes the Exim and sluice configs for one mode with a
# per-sender limit of LIMIT messages an hour:
#   none       no limit
#   ratelimit  Exim's own ratelimit ACL condition (its hints database)
#   sluice     sluice's module in Exim's processes (${dlfunc})
#   preload    the same, the module preloaded in the daemon (LD_PRELOAD)
#   socket     no module: ${readsocket} to sluice-policyd on a unix socket
configure() {
  local mode="$1" limit="$2" d="$work/$1"
  # The last run's directory is moved aside, not deleted: on ext4 without a
  # journal (this VM's) thousands of just-freed inodes slow the next run's
  # spool files (ext4 skips recently deleted inodes). The bench's exit
  # removes them all.
  [[ -d "$d" ]] && mv "$d" "$d.$(date +%s%N)"
  mkdir -p "$d/spool" "$d/log"
  chown Debian-exim:Debian-exim "$d/spool" "$d/log"
  chmod 0755 "$d"
  # The burst detectors run on every body but never trip: the bench's
  # bodies differ only in a number, so by default each sender's 10th copy
  # would be refused at DATA (what none of the other modes does).
  cat >"$d/sluice.conf" <<CONF
level { name: "mailbox" limit { window: "1h" max: $limit } }
abuse {
  near_duplicate { threshold: 100000000 }
  same_size { threshold: 100000000 }
  campaign { threshold: 100000000 }
}
policy { trusted_network: "127.0.0.0/8" }
table { path: "$d/counters.table" }
CONF
  chmod 0644 "$d/sluice.conf"
  install -m 0660 -o root -g Debian-exim /dev/null "$d/counters.table"
  local rcpt data
  case "$mode" in
    none) rcpt="  accept" data="  accept" ;;
    ratelimit)
      rcpt="  defer ratelimit = $limit / 1h / per_mail / \$sender_address
        message = rate limit
  accept"
      data="  accept" ;;
    sluice | preload)
      rcpt="  warn  set acl_m_txn = \${if eq{\$acl_m_txn}{}{\$pid.\$tod_epoch_l}{\$acl_m_txn}}
        set acl_m_sluice = \${dlfunc{$work/sluice_exim.so}{sluice_rcpt}{$d/sluice.conf}{\$acl_m_txn}{\$sender_host_address}{\$authenticated_id}{\$sender_address}{\$local_part@\$domain}}
  defer condition = \${if match{\$acl_m_sluice}{\\N^4\\N}}
        message = \$acl_m_sluice
  accept"
      data="  warn  set acl_m_sluice = \${dlfunc{$work/sluice_exim.so}{sluice_data}{$d/sluice.conf}{\$acl_m_txn}{\$sender_host_address}{\$authenticated_id}{\$sender_address}{\$message_size}{\$recipients_count}{\$h_X-PHP-Originating-Script:}}
  defer condition = \${if match{\$acl_m_sluice}{\\N^4\\N}}
        message = \$acl_m_sluice
  accept" ;;
    socket)  # no module: Exim asks sluice-policyd (policy protocol) with readsocket
      local ask="\${readsocket{$d/policy.sock}{request=smtpd_access_policy\\ninstance=\$acl_m_txn\\nclient_address=\$sender_host_address\\nsasl_username=\$authenticated_id\\nsender=\$sender_address"
      rcpt="  warn  set acl_m_txn = \${if eq{\$acl_m_txn}{}{\$pid.\$tod_epoch_l}{\$acl_m_txn}}
        set acl_m_sluice = $ask\\nprotocol_state=RCPT\\nrecipient=\$local_part@\$domain\\n\\n}{5s}{ }{action=DUNNO}}
  defer condition = \${if match{\$acl_m_sluice}{\\N^action=4\\N}}
        message = \$acl_m_sluice
  accept"
      data="  warn  set acl_m_sluice = $ask\\nprotocol_state=END-OF-MESSAGE\\nsize=\$message_size\\nrecipient_count=\$recipients_count\\n\\n}{5s}{ }{action=DUNNO}}
  defer condition = \${if match{\$acl_m_sluice}{\\N^action=4\\N}}
        message = \$acl_m_sluice
  accept" ;;
  esac
  cat >"$d/exim.conf" <<CONF
exim_path = $work/exim4
spool_directory = $d/spool
log_file_path = $d/log/%slog
primary_hostname = sluice-exim.example
local_interfaces = 127.0.0.1
exim_user = Debian-exim
exim_group = Debian-exim
trusted_users = root
queue_only = true
smtp_accept_max = 64
smtp_accept_queue_per_connection = 0
acl_smtp_rcpt = acl_rcpt
acl_smtp_data = acl_data
begin acl
acl_rcpt:
$rcpt
acl_data:
$data
begin routers
begin transports
CONF
  chmod 0644 "$d/exim.conf"
}

# run MODE MESSAGES SENDERS: starts Exim, sends, prints "msgs/s min max sum
# cpu-us-per-message faults-per-message" (the last two: CPU time and minor
# page faults of Exim's SMTP processes, reaped by the daemon, per message:
# what the client's share of the cores hides; in socket mode the CPU of
# sluice-policyd is added).
run() {
  local mode="$1" port
  port=$(bench_port)
  # preload: the module is loaded, linked and its config read once by the
  # daemon, so the per-connection processes it forks inherit all that
  # instead of doing it again.
  local preload=()
  # With LD_BIND_NOW and SLUICE_EXIM_CONFIG, as bindings/exim/README.md says.
  [[ "$mode" == preload ]] && preload=(env "LD_PRELOAD=$work/sluice_exim.so" LD_BIND_NOW=1
    "SLUICE_EXIM_CONFIG=$work/$mode/sluice.conf")
  if [[ "$mode" == socket ]]; then
    "$bin/bindings/postfix/sluice-policyd" --config "$work/$mode/sluice.conf" \
      --listen "unix:$work/$mode/policy.sock" --socket-group Debian-exim \
      >>"$work/$mode.policyd.out" 2>&1 &
    local policyd=$!
    bench_track "$policyd"
    for ((i = 0; i < 100; i++)); do [[ -S "$work/$mode/policy.sock" ]] && break; sleep 0.1; done
  fi
  "${preload[@]}" "$work/exim4" -C "$work/$mode/exim.conf" -bdf -oX "$port" >>"$work/$mode.out" 2>&1 &
  local pid=$!
  bench_track "$pid"
  bench_wait_tcp "$port"
  timeout 600 python3 - "$port" "$2" "$3" <<'PY'
import os, smtplib, sys, threading, time
port, total, senders = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
sessions = 16
lock = threading.Lock()
next_msg = [0]
admitted = [0] * senders
per_connection = int(os.environ.get("PER_CONNECTION", "0"))  # 0: one connection per session
def worker():
    s = smtplib.SMTP("127.0.0.1", port, timeout=60)
    s.ehlo("load.example")
    sent = 0
    while True:
        with lock:
            i = next_msg[0]
            if i >= total:
                break
            next_msg[0] += 1
        if per_connection and sent == per_connection:  # a new connection (no QUIT: Exim holds it)
            s.close()
            s = smtplib.SMTP("127.0.0.1", port, timeout=60)
            s.ehlo("load.example")
            sent = 0
        sent += 1
        sender = f"s{i % senders}@acme.example"
        try:
            s.sendmail(sender, [f"r{i}@remote.example"], f"Subject: m{i}\r\n\r\nmessage {i}\r\n")
            with lock:
                admitted[i % senders] += 1
        except smtplib.SMTPRecipientsRefused:
            s.rset()
        except smtplib.SMTPResponseException:
            s.rset()
    s.quit()
t0 = time.time()
threads = [threading.Thread(target=worker) for _ in range(sessions)]
for t in threads:
    t.start()
for t in threads:
    t.join()
secs = time.time() - t0
print(f"{total / secs:.0f} {min(admitted)} {max(admitted)} {sum(admitted)}", end=" ")
PY
  # The children's CPU (utime + stime, in clock ticks) once they are reaped.
  local ticks cpu i
  for ((i = 0; i < 50; i++)); do
    [[ -z "$(pgrep -P "$pid")" ]] && break
    sleep 0.1
  done
  ticks=$(awk '{ print $16 + $17 }' "/proc/$pid/stat")
  # socket: sluice's work is in sluice-policyd; its CPU counts too.
  [[ -n "${policyd:-}" ]] && ticks=$((ticks + $(awk '{ print $14 + $15 }' "/proc/$policyd/stat")))
  faults=$(awk -v n="$2" '{ printf "%.0f", $11 / n }' "/proc/$pid/stat")
  cpu=$(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v n="$2" 'BEGIN { printf "%.0f", t / hz * 1e6 / n }')
  echo "$cpu $faults"
  kill "$pid"
  [[ -n "${policyd:-}" ]] && kill "$policyd" 2>/dev/null
  wait "$pid" 2>/dev/null || true
}

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')  machine: $(nproc) vCPU  commit: $(git rev-parse --short HEAD)"
echo "throughput: $messages messages, 16 sessions, 100 senders, limits that never trip"
# Three rounds, the modes in turn (this VM's speed drifts); each line is
# one mode's three rates.
declare -A rates cpus faults_of
for round in $(seq "${ROUNDS:-3}"); do
  for mode in ${MODES:-none ratelimit sluice preload socket}; do
    configure "$mode" 100000000
    read -r rate _ _ _ cpu faults <<<"$(run "$mode" "$messages" 100 2>/dev/null)"
    rates[$mode]="${rates[$mode]:-} $rate"
    cpus[$mode]="${cpus[$mode]:-} $cpu"
    faults_of[$mode]="${faults_of[$mode]:-} $faults"
  done
done
for mode in ${MODES:-none ratelimit sluice preload socket}; do
  echo "  $mode: messages/s${rates[$mode]}; Exim CPU µs/message${cpus[$mode]};" \
    "page faults/message${faults_of[$mode]}"
done
echo "per-sender limit 10/h, 20 tries per sender (50 senders):"
for mode in ratelimit sluice socket; do
  configure "$mode" 10
  read -r _ lo hi sum <<<"$(run "$mode" 1000 50 2>/dev/null)"
  echo "  $mode: admitted per sender min $lo max $hi (total $sum)"
done
