#!/usr/bin/env bash
# Installs header, libraries and sluice.pc under a fresh prefix, then builds
# a small C program outside the repository with
#   cc $(pkg-config --cflags --libs sluice)
# and runs it against the installed shared library; then links the same
# program with the static library (libsluice.a and pkg-config --static's
# system libraries) and runs it without libsluice.so.
set -euo pipefail
RUNFILES="${TEST_SRCDIR:-$PWD}/${TEST_WORKSPACE:-sluice}"
here="$RUNFILES/bindings/c"
command -v pkg-config >/dev/null || { echo "needs pkg-config (scripts/setup.sh)"; exit 1; }
prefix="$(mktemp -d /tmp/sluice-install.XXXXXX)"
trap 'rm -rf "$prefix"' EXIT
bash "$here/install.sh" "$prefix" "$here/sluice.h" "$here/libsluice.so.0" "$here/sluice.pc.in" \
  "$here/libsluice.a" "$here/sluice.libs"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
[[ "$(pkg-config --modversion sluice)" == 0.1.0 ]] || { echo "pkg-config: wrong version"; exit 1; }
mkdir -p "$prefix/app"
cat >"$prefix/app/main.c" <<'C'
#include <sluice.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  const char config[] = "level { name: \"mailbox\" limit { window: \"1h\" max: 1 } }";
  sluice_engine_t* engine = NULL;
  char* err = NULL;
  if (sluice_engine_open(config, strlen(config), NULL, &engine, &err) != SLUICE_OK) {
    fprintf(stderr, "open: %s\n", err);
    sluice_free(err);
    return 1;
  }
  sluice_event_t e = SLUICE_INIT_EVENT;
  e.stage = SLUICE_STAGE_RCPT;
  e.sender = "a@example.com";
  e.sender_len = strlen(e.sender);
  int admitted = 0;
  for (int i = 0; i < 3; ++i) {
    char txn[8];
    snprintf(txn, sizeof(txn), "t%d", i);
    e.transaction = txn;
    e.transaction_len = strlen(txn);
    sluice_verdict_t v = SLUICE_INIT_VERDICT;
    if (sluice_engine_evaluate(engine, &e, 0, &v) != SLUICE_OK) return 1;
    admitted += v.admitted;
    if (!v.admitted) printf("%d %s %s\n", v.smtp_code, v.enhanced_status, v.text);
  }
  sluice_engine_close(engine);
  printf("sluice %s: %d of 3 admitted\n", sluice_version_string(), admitted);
  return admitted == 1 ? 0 : 1;
}
C
cd "$prefix/app"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror -pedantic -o app main.c $(pkg-config --cflags --libs sluice)
source "$RUNFILES/tests/postfix/env.sh"
sl_sanitizer_preload "$prefix/lib/libsluice.so.0"
out=$(env "${SL_SAN_ENV[@]}" LD_LIBRARY_PATH="$prefix/lib" ./app)
echo "$out"
grep -q "1 of 3 admitted" <<<"$out"
grep -q "451 4.7.1 sluice: mailbox messages limit 1/1h exceeded" <<<"$out" ||
  grep -q "451 4.7.1 mailbox messages limit 1/1h exceeded" <<<"$out"
echo "ok: built outside the repository with pkg-config and run"

# The static library: no libsluice.so at run time.
san=()
if [[ "${SLUICE_SANITIZER:-}" == asan ]]; then
  san=(-fsanitize=address,undefined)  # the suite's ASan build: the archive is instrumented
fi
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror -pedantic "${san[@]}" -o app_static main.c \
  $(pkg-config --cflags sluice) "$prefix/lib/libsluice.a" \
  $(pkg-config --static --libs-only-l sluice | sed 's/-lsluice //')
if ldd ./app_static | grep -q libsluice; then
  echo "app_static needs libsluice.so"
  exit 1
fi
out=$(ASAN_OPTIONS=detect_leaks=0 ./app_static)
echo "$out"
grep -q "1 of 3 admitted" <<<"$out"
echo "ok: linked with libsluice.a and run"
