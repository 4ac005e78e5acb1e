#!/usr/bin/env bash
# Command-line manners: every program answers --help (usage on stdout, exit
# 0, no daemon asked) and --version; usage errors go to stderr with exit 2;
# the install command puts the programs and their man pages under a prefix
# where man(1) finds them; the man pages render without groff warnings and
# document exactly the options (and sluice's commands) the programs know.
set -euo pipefail
RUNFILES="${RUNFILES_DIR:-$0.runfiles}/sluice"
DIR=$(mktemp -d /tmp/sluice-manners.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
PREFIX="$DIR/prefix"
bash "$RUNFILES/scripts/install.sh" "$PREFIX" "$RUNFILES/bindings/cli/sluice" \
  "$RUNFILES/bindings/postfix/sluice-policyd" "$RUNFILES/bindings/milter/sluice-milter" \
  "$RUNFILES/bindings/cli/sluice.1" "$RUNFILES/bindings/postfix/sluice-policyd.8" \
  "$RUNFILES/bindings/milter/sluice-milter.8" >/dev/null
SLUICE="$PREFIX/bin/sluice"
POLICYD="$PREFIX/sbin/sluice-policyd"
MILTER="$PREFIX/sbin/sluice-milter"
VERSION=$("$SLUICE" --version | awk '{print $2}')
[[ "$VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "sluice --version: '$VERSION'"

# --help and help: stdout, exit 0, never a daemon (the socket does not exist).
for args in "--help" "help" "-h" "--socket $DIR/none.sock help"; do
  # shellcheck disable=SC2086
  out=$("$SLUICE" $args 2>"$DIR/err") || fail "sluice $args: exit $?"
  [[ "$out" == usage:* ]] || fail "sluice $args printed: $out"
  [[ ! -s "$DIR/err" ]] || fail "sluice $args wrote to stderr: $(cat "$DIR/err")"
done
[[ "$("$SLUICE" version)" == "sluice $VERSION" ]] || fail "sluice version"
for p in "$POLICYD:sluice-policyd" "$MILTER:sluice-milter"; do
  bin="${p%%:*}" name="${p##*:}"
  out=$("$bin" --help 2>"$DIR/err") || fail "$name --help: exit $?"
  [[ "$out" == "usage: $name "* ]] || fail "$name --help printed: $out"
  [[ ! -s "$DIR/err" ]] || fail "$name --help wrote to stderr"
  [[ "$("$bin" --version)" == "$name $VERSION" ]] || fail "$name --version"
  set +e
  "$bin" --bogus x >"$DIR/out" 2>"$DIR/err"
  rc=$?
  set -e
  ((rc == 2)) || fail "$name --bogus: exit $rc"
  grep -q "bad option --bogus" "$DIR/err" && grep -q "^usage: $name" "$DIR/err" ||
    fail "$name --bogus: $(cat "$DIR/err")"
  [[ ! -s "$DIR/out" ]] || fail "$name --bogus wrote to stdout"
done
set +e
"$SLUICE" >"$DIR/out" 2>"$DIR/err"
rc=$?
set -e
((rc == 2)) && grep -q '^usage:' "$DIR/err" || fail "sluice without a command: exit $rc"

# man finds the pages under the prefix; they render without warnings and
# carry the programs' version.
for page in sluice.1 sluice-policyd.8 sluice-milter.8; do
  name="${page%.*}" section="${page##*.}"
  found=$(MANPATH="$PREFIX/share/man" man -w "$section" "$name" 2>/dev/null) ||
    fail "man -w $section $name under $PREFIX"
  [[ "$found" == "$PREFIX/share/man/man$section/$page"* ]] || fail "man found $found"
  warnings=$(LC_ALL=C.UTF-8 groff -man -ww -z "$found" 2>&1)
  [[ -z "$warnings" ]] || fail "$page: $warnings"
  grep -q "^\.TH .*\"sluice $VERSION\"" "$found" || fail "$page does not say sluice $VERSION"
done

# Options: what --help lists and what the man page documents are the same set.
options_of_help() { "$1" --help | grep -o -- '--[a-z][a-z-]*' | sort -u; }
options_of_man() { grep -o '\\-\\-[a-z][a-z-]*' "$1" | sed 's/\\-/-/g' | sort -u; }
for p in "$POLICYD:sluice-policyd.8" "$MILTER:sluice-milter.8" "$SLUICE:sluice.1"; do
  bin="${p%%:*}" page="${p##*:}"
  section="${page##*.}"
  man_file="$PREFIX/share/man/man$section/$page"
  diff <(options_of_help "$bin") <(options_of_man "$man_file") >"$DIR/diff" ||
    fail "$page and $(basename "$bin") --help disagree on options (< help, > man): $(cat "$DIR/diff")"
done
# sluice's commands: each one the usage lists has an entry in the man page's
# COMMANDS section, and each entry there is a command the usage lists.
usage_commands() { "$SLUICE" --help | awk '/^  [a-z]/ {sub(/,$/, "", $1); print $1}' | sort -u; }
man_commands() {
  awk '/^\.SH COMMANDS/ {on = 1; next} /^\.SH/ {on = 0}
       on && prev == ".TP" {print $2} {prev = $0}' "$PREFIX/share/man/man1/sluice.1" | sort -u
}
diff <(usage_commands) <(man_commands) >"$DIR/diff" ||
  fail "sluice(1) COMMANDS and sluice --help disagree (< help, > man): $(cat "$DIR/diff")"
echo PASS
