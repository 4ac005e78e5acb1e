#!/usr/bin/env bash
# Integration test: sluice-policyd (the real binary) against what a local
# attacker or a broken machine does to a daemon. Loopback only; every wait
# is bounded.
# Shows: symlinks planted at the table, names and pid file paths are
# refused or replaced, their targets unchanged; a table others can write is
# refused; a second instance on the same table or unix socket is refused and
# the first keeps serving; the unix socket gets its mode at creation even
# under umask 077; out of file descriptors, the accept loop neither spins
# nor floods the log, and serves again once descriptors are free; /metrics
# cuts off an endless header line and keeps at most 16 connections; a table truncated under the running
# daemon ends it with a message naming the file (exit 75), not a bare SIGBUS.
set -uo pipefail

RUNFILES="${TEST_SRCDIR:-$PWD}/${TEST_WORKSPACE:-sluice}"
POLICYD="$RUNFILES/bindings/postfix/sluice-policyd"
source "$RUNFILES/tests/postfix/env.sh"

if [[ $(id -u) -ne 0 ]]; then
  echo "needs root (planted files of another user, socket modes)" >&2
  exit 1
fi

WORK="$(mktemp -d /tmp/sluice-harden.XXXXXX)"
chmod 0755 "$WORK"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# start NAME ARGS...: runs sluice-policyd in the background, log in $WORK/NAME.log.
start() {
  local name="$1"
  shift
  "$POLICYD" "$@" >"$WORK/$name.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}
# exits_within SECONDS PID: waits for PID (a child of this shell) to end;
# sets EXITED to "exit CODE" or "still running".
exits_within() {
  local i
  EXITED="still running"
  for ((i = 0; i < $1 * 20; i++)); do
    if ! kill -0 "$2" 2>/dev/null; then
      wait "$2" 2>/dev/null
      EXITED="exit $?"
      return
    fi
    sleep 0.05
  done
}
ask() {  # PORT: one RCPT request, prints the action
  timeout 10 python3 - "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
s.settimeout(5)
s.sendall(b"request=smtpd_access_policy\nprotocol_state=RCPT\nsender=a@x.example\n"
          b"client_address=127.0.0.1\ninstance=h1\n\n")
got = b""
while not got.endswith(b"\n\n"):
    chunk = s.recv(4096)
    if not chunk:
        break
    got += chunk
print(got.decode().strip())
PY
}

# 1. A symlink at the table path: refused, its target untouched (and a
#    dangling one creates nothing).
echo "keep me" >"$WORK/precious"
ln -s "$WORK/precious" "$WORK/link.table"
start symlink --listen "inet:127.0.0.1:$(sl_free_port)" --table "$WORK/link.table"
exits_within 10 "$LAST_PID"
check "symlinked table: refused" "exit 1" "$EXITED"
check "symlinked table: says why" "symbolic link" "$(cat "$WORK/symlink.log")"
check_eq "symlinked table: target unchanged" "keep me" "$(cat "$WORK/precious")"
ln -s "$WORK/nothing" "$WORK/dangling.table"
start dangling --listen "inet:127.0.0.1:$(sl_free_port)" --table "$WORK/dangling.table"
exits_within 10 "$LAST_PID"
check "dangling symlink: refused" "exit 1" "$EXITED"
check_eq "dangling symlink: nothing created" "absent" "$([[ -e $WORK/nothing ]] && echo present || echo absent)"

# 2. A table others can write, or another user's: refused.
touch "$WORK/open.table"
chmod 0666 "$WORK/open.table"
start open --listen "inet:127.0.0.1:$(sl_free_port)" --table "$WORK/open.table"
exits_within 10 "$LAST_PID"
check "world-writable table: refused" "exit 1" "$EXITED"
check "world-writable table: says why" "writable by others" "$(cat "$WORK/open.log")"
touch "$WORK/nobody.table"
chown 65534 "$WORK/nobody.table"
start nobody --listen "inet:127.0.0.1:$(sl_free_port)" --table "$WORK/nobody.table"
exits_within 10 "$LAST_PID"
check "another user's table: refused" "exit 1" "$EXITED"
check "another user's table: says why" "owned by uid 65534" "$(cat "$WORK/nobody.log")"

# 3. A running daemon (pid and names files with planted symlinks; a unix
#    socket under umask 077).
echo "keep me too" >"$WORK/precious2"
ln -s "$WORK/precious2" "$WORK/policyd.pid"
ln -s "$WORK/precious2" "$WORK/counters.table.names"
PORT=$(sl_free_port)
MPORT=$(sl_free_port)
(
  umask 077
  exec "$POLICYD" --listen "inet:127.0.0.1:$PORT" --listen "unix:$WORK/policy.sock" \
    --table "$WORK/counters.table" --pid-file "$WORK/policyd.pid" --maintain-every 1 \
    --metrics "127.0.0.1:$MPORT" >"$WORK/main.log" 2>&1
) &
MAIN=$!
PIDS+=("$MAIN")
sl_wait_port "$PORT" 10 || { cat "$WORK/main.log"; exit 1; }
check "running daemon answers" "action=" "$(ask "$PORT")"
check_eq "pid file: a regular file with the pid" "$MAIN" "$(cat "$WORK/policyd.pid")"
check_eq "pid file: the planted symlink's target unchanged" "keep me too" "$(cat "$WORK/precious2")"
check_eq "unix socket mode 0660 under umask 077" "660" "$(stat -c %a "$WORK/policy.sock")"

# 4. A second instance on the same table, or the same socket: refused;
#    the first one keeps its socket and keeps serving.
start second --listen "inet:127.0.0.1:$(sl_free_port)" --table "$WORK/counters.table"
exits_within 10 "$LAST_PID"
check "second instance on the table: refused" "exit 1" "$EXITED"
check "second instance: names the first" "locked by pid $MAIN" "$(cat "$WORK/second.log")"
start third --listen "unix:$WORK/policy.sock" --table "$WORK/other.table"
exits_within 10 "$LAST_PID"
check "second instance on the socket: refused" "exit 1" "$EXITED"
check_eq "the first one's socket is still there" "socket" \
  "$([[ -S $WORK/policy.sock ]] && echo socket || echo gone)"
check "the first one still serves" "action=" "$(ask "$PORT")"
# The names file is written (every second here) over the planted symlink.
for ((i = 0; i < 60; i++)); do
  [[ -L "$WORK/counters.table.names" ]] || break
  sleep 0.1
done
check_eq "names file: the symlink was replaced by a file" "file" \
  "$([[ -f $WORK/counters.table.names && ! -L $WORK/counters.table.names ]] && echo file || echo link)"
check_eq "names file: the planted target unchanged" "keep me too" "$(cat "$WORK/precious2")"

# 4b. The answer to a bad request is configurable; the connection goes on.
BPORT=$(sl_free_port)
start badreq --listen "inet:127.0.0.1:$BPORT" --bad-request-action "REJECT 5.5.2 bad request"
sl_wait_port "$BPORT" 10
r=$(timeout 10 python3 - "$BPORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
s.settimeout(5)
def ask(p):
    s.sendall(p)
    got = b""
    while not got.endswith(b"\n\n"):
        c = s.recv(4096)
        if not c:
            return got + b"<closed>"
        got += c
    return got
print(ask(b"\x00garbage\n\n").decode(errors="replace").strip())
print(ask(b"request=smtpd_access_policy\nprotocol_state=RCPT\nsender=a@x.example\n"
          b"client_address=127.0.0.1\ninstance=b1\n\n").decode().strip())
PY
)
check "bad request: the configured answer" "action=REJECT 5.5.2 bad request (" "$r"
check "bad request: the connection goes on" "action=DUNNO" "$r"

# 5. /metrics: an endless header line is cut off, not read forever.
r=$(timeout 30 python3 - "$MPORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
s.settimeout(10)
sent = 0
try:
    s.sendall(b"GET /metrics HTTP/1.0\r\nX-Long: ")
    while sent < 64 << 20:
        s.sendall(b"a" * 65536)
        sent += 65536
    print("not cut off after", sent)
except (BrokenPipeError, ConnectionResetError, socket.timeout):
    print("cut off after", sent, "bytes")
PY
)
check "metrics: endless header cut off" "cut off after" "$r"
# (up to the loopback socket buffers' few MiB are in flight when it closes)
check "metrics: cut off long before 64 MiB" "yes" \
  "$(awk '{ print ($4 < 16777216) ? "yes" : "no: " $4 }' <<<"$r")"
m=$(timeout 10 python3 - "$MPORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
s.settimeout(5)
s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
d = b""
while True:
    c = s.recv(65536)
    if not c:
        break
    d += c
print(d.decode())
PY
)
check "metrics still answer" "sluice_decisions_total" "$m"
r=$(timeout 30 python3 - "$MPORT" <<'PY'
import socket, sys
port = int(sys.argv[1])
conns = [socket.create_connection(("127.0.0.1", port), 5) for _ in range(40)]
closed = 0
for c in conns:
    c.settimeout(0.5)
    try:
        if c.recv(1) == b"":
            closed += 1
    except socket.timeout:
        pass
print(f"idle /metrics connections kept {40 - closed} of 40")
PY
)
check "metrics: at most 16 connections at once ($r)" "kept 16 of 40" "$r"

# 6. A table truncated under the running daemon: it ends with a message
#    naming the file (exit 75), not a bare SIGBUS.
truncate -s 4096 "$WORK/counters.table"
ask "$PORT" >/dev/null 2>&1
exits_within 10 "$MAIN"
check "truncated table: the daemon ends with 75" "exit 75" "$EXITED"
check "truncated table: names the file" "counter table $WORK/counters.table was cut short" \
  "$(cat "$WORK/main.log")"

# 7. Few file descriptors: with 80 idle connections against a hard limit
#    of 64 (max_connections follows it) or of 24 (accept() itself fails:
#    EMFILE), the accept loop does not spin and the log stays small; once
#    the idle ones go, new requests are served.
fd_limit() {  # NOFILE EXPECTED-LOG-TEXT [metrics]: idle policy (or /metrics) connections
  local port mport log="$WORK/fd$1${3:-}.log" target
  port=$(sl_free_port)
  mport=$(sl_free_port)
  target=$port
  [[ "${3:-}" == metrics ]] && target=$mport
  (
    ulimit -n "$1"
    exec "$POLICYD" --listen "inet:127.0.0.1:$port" --threads 1 \
      --metrics "127.0.0.1:$mport" >"$log" 2>&1
  ) &
  local pid=$!
  PIDS+=("$pid")
  sl_wait_port "$port" 10 || { cat "$log"; return; }
  local r lines
  r=$(timeout 60 python3 - "$target" "$pid" <<'PY'
import os, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
def cpu():
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
conns = []
for _ in range(80):
    try:
        conns.append(socket.create_connection(("127.0.0.1", port), 2))
    except OSError:
        break
c0, t0 = cpu(), time.time()
time.sleep(3)
print(f"cpu {cpu() - c0:.2f} s in {time.time() - t0:.1f} s")
for s in conns:
    s.close()
time.sleep(1)
PY
  )
  check "nofile $1 ${3:-}: the loop does not spin ($r)" "yes" \
    "$(awk '{ print ($1 == "cpu" && $2 + 0 < 0.5) ? "yes" : "no" }' <<<"$r")"
  lines=$(wc -l <"$log")
  check "nofile $1 ${3:-}: the log stays small ($lines lines)" "yes" "$([[ $lines -le 8 ]] && echo yes)"
  check "nofile $1 ${3:-}: the reason is logged" "$2" "$(cat "$log")"
  check "nofile $1 ${3:-}: serves again afterwards" "action=" "$(ask "$port")"
}
fd_limit 64 "too many connections (max 16)"
fd_limit 24 "Too many open files"
fd_limit 24 "Too many open files" metrics

echo "$SL_FAILURES failure(s)"
[[ $SL_FAILURES -eq 0 ]]
