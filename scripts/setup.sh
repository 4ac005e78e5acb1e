#!/usr/bin/env bash
# Installs every Debian package sluice's build, tests and benchmarks need.
# Idempotent: packages already present are skipped. Run as root (or with sudo).
set -euo pipefail

PKGS=(
  bazel-bootstrap bazel-rules-java
  g++ clang-format clang libclang-rt-14-dev pkg-config
  libabsl-dev libxxhash-dev libprotobuf-dev protobuf-compiler
  libgtest-dev libgmock-dev libbenchmark-dev valgrind
  libfuzzy-dev libtlsh-dev
  libevent-dev libpsl-dev publicsuffix libidn2-dev libicu-dev libc-ares-dev rbldnsd unbound dnsutils
  postfix swaks sasl2-bin libsasl2-modules
  python3 python3-pytest
  exim4-dev libmariadb3 libidn12 libspf2-2
  libmilter-dev miltertest python3-milter libwrap0 m4
  libhiredis-dev redis-server redis-tools
  chromium
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  echo "setup: installing ${missing[*]}" >&2
  # Postfix asks questions on install; the tests run private instances and
  # need no system configuration.
  printf '%s\n' 'postfix postfix/main_mailer_type select No configuration' \
    'postfix postfix/mailname string sluice-test.example' | $SUDO debconf-set-selections
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

# Exim (heavy: it has ${dlfunc}) conflicts with Postfix as a package: its
# binary is unpacked from the .deb into a cache folder instead, and runs as
# the Debian-exim user (tests/exim/).
EXIM_ROOT="${SLUICE_EXIM_ROOT:-$HOME/.cache/sluice-exim}"
if [[ ! -x "$EXIM_ROOT/root/usr/sbin/exim4" ]]; then
  mkdir -p "$EXIM_ROOT"
  (cd "$EXIM_ROOT" && rm -f exim4-daemon-heavy_*.deb && apt-get download exim4-daemon-heavy >&2 &&
    dpkg-deb -x exim4-daemon-heavy_*.deb root) ||
    echo "setup: could not unpack exim4-daemon-heavy (the Exim tests will fail)" >&2
fi
if ! id Debian-exim >/dev/null 2>&1; then
  $SUDO adduser --system --group --allow-bad-names --no-create-home Debian-exim >&2 || true
fi

# Sendmail conflicts with Postfix as a package too: sendmail-bin (the MTA)
# and sendmail-cf (the m4 files that build a .cf) are unpacked into a cache
# folder (tests/sendmail/).
SENDMAIL_ROOT="${SLUICE_SENDMAIL_ROOT:-$HOME/.cache/sluice-sendmail}"
if [[ ! -x "$SENDMAIL_ROOT/root/usr/libexec/sendmail/sendmail" ]]; then
  mkdir -p "$SENDMAIL_ROOT"
  (cd "$SENDMAIL_ROOT" && rm -f sendmail-*.deb && apt-get download sendmail-bin sendmail-cf >&2 &&
    for f in sendmail-*.deb; do dpkg-deb -x "$f" root; done) ||
    echo "setup: could not unpack sendmail-bin (the Sendmail test will fail)" >&2
fi

# fail2ban's test logs (real Postfix and Dovecot lines with labels) for the
# log follower's tests, read where they are unpacked: the package itself is
# not installed (it would start a service that bans addresses).
FAIL2BAN_ROOT="${SLUICE_FAIL2BAN_ROOT:-$HOME/.cache/sluice-fail2ban}"
if [[ ! -d "$FAIL2BAN_ROOT/root/usr/lib/python3/dist-packages/fail2ban/tests/files/logs" ]]; then
  mkdir -p "$FAIL2BAN_ROOT"
  (cd "$FAIL2BAN_ROOT" && rm -f fail2ban_*.deb && apt-get download fail2ban >&2 &&
    dpkg-deb -x fail2ban_*.deb root) ||
    echo "setup: could not unpack fail2ban (the log follower's fail2ban test will fail)" >&2
fi
