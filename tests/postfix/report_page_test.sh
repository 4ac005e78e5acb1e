#!/usr/bin/env bash
# Integration test: the report page in a real browser. `sluice report`
# writes one self-contained HTML file; headless Chromium (no network: every
# host name resolves to nothing) loads it, and the DOM it built and a
# screenshot are checked (tests/report/page_check.py):
#   1. from a replay of a day of a hosting server's log
#      (tests/report/demo_log.sh, the embedded default config), with
#      hostile names in it: one chart per level, the limits drawn, the
#      trips on the timeline, the drill-down, nothing that runs or
#      fetches, and a screenshot with the red limit lines and the trips;
#   2. from a live sluice-policyd behind a real Postfix (its admin socket):
#      what passed, per hour, with the trip of the sender it deferred;
#   3. refusals: bad data, bad options, no daemon, an unwritable output.
set -uo pipefail

RUNFILES="${TEST_SRCDIR:-$PWD}/${TEST_WORKSPACE:-sluice}"
export SL_POLICYD="$RUNFILES/bindings/postfix/sluice-policyd"
SLUICE="$RUNFILES/bindings/cli/sluice"
source "$RUNFILES/tests/postfix/env.sh"
sl_test_begin postfix-report chromium
PAGE_CHECK=(/usr/bin/python3 "$RUNFILES/tests/report/page_check.py")
export TZ=UTC

chrome() {
  timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --user-data-dir="$WORK/chrome" --host-resolver-rules="MAP * ~NOTFOUND" "$@" \
    2>>"$WORK/chrome.log"
}
val() { grep "^$1=" <<<"$2" | head -1 | cut -d= -f2-; }
json() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# ---- 1. A replay, with hostile names --------------------------------------
bash "$RUNFILES/tests/report/demo_log.sh" >"$WORK/mail.log"
cat >>"$WORK/mail.log" <<'LOG'
Dec  6 12:00:01 mx1 postfix/submission/smtpd[2101]: 4QEVIL1: client=x[192.0.2.200], sasl_method=PLAIN, sasl_username=x"><svg/onload=alert(1)>@acme.example
Dec  6 12:00:01 mx1 postfix/qmgr[2103]: 4QEVIL1: from=<x"><svg/onload=alert(1)>@acme.example>, size=900, nrcpt=1 (queue active)
Dec  6 12:00:02 mx1 postfix/submission/smtpd[2101]: 4QEVIL2: client=x[192.0.2.201], sasl_method=PLAIN, sasl_username=</script><script>alert(2)</script>@acme.example
Dec  6 12:00:02 mx1 postfix/qmgr[2103]: 4QEVIL2: from=<a@acme.example>, size=900, nrcpt=1 (queue active)
LOG
"$SLUICE" default-config >"$WORK/sluice.conf"
"$SLUICE" report --replay "$WORK/sluice.conf" "$WORK/mail.log" -o "$WORK/page.html" 2>"$WORK/err"
check_eq "report --replay writes the page" "0" "$?"
check "it says what it wrote" "wrote $WORK/page.html" "$(cat "$WORK/err")"
"$SLUICE" report --replay "$WORK/sluice.conf" "$WORK/mail.log" --json -o "$WORK/data.json" 2>/dev/null
levels=$(json "$WORK/data.json" "len({s['level'] for s in d['series']})")
trips=$(json "$WORK/data.json" "len(d.get('trip', []))")
subs=$(json "$WORK/data.json" "len([s for s in d['series'] if s['level'] == 'subscription'])")
check "the data has levels and trips" "yes" "$([[ $levels -ge 5 && $trips -ge 2 ]] && echo yes)"

chrome --dump-dom "file://$WORK/page.html" >"$WORK/dom.html"
dom=$("${PAGE_CHECK[@]}" dom "$WORK/dom.html")
check_eq "one chart per level" "$levels" "$(val count.svg.chart "$dom")"
check "the hacked mailbox has a line" "mark@consult.example" "$(val entities.polyline.series "$dom")"
check "its hourly limit (starter plan: 60) is drawn" "60" "$(val limits "$dom")"
check_eq "every trip is on the timeline" "$trips" "$(val count.circle.trip "$dom")"
check "the deferred senders are on it" "mark@consult.example,newsletter@acme.example" \
  "$(val entities.circle.trip "$dom")"
check_eq "a drill-down entry per subscription" "$subs" "$(val count.details.subscription "$dom")"
check "the hacked mailbox is in its subscription's drill-down" "mark@consult.example" \
  "$(val entities.div.mailbox "$dom")"
check_eq "the heaviest subscription and domain open" "2" "$(val open_details "$dom")"
check_eq "nothing runs (script, img, iframe, ...)" "0" "$(val active "$dom")"
check_eq "no event handler attributes" "0" "$(val handlers "$dom")"
check_eq "nothing fetched (src, href, url(), http)" "0" "$(val fetches "$dom")"
check "a hostile name is shown as text" 'svg/onload=alert(1)' \
  "$(/usr/bin/python3 -c 'import html,sys; print(html.unescape(open(sys.argv[1]).read()))' "$WORK/dom.html")"
check_eq "the page names no URL" "0" "$(grep -c -E 'https?:' "$WORK/page.html")"

chrome --screenshot="$WORK/shot.png" --window-size=1280,2400 "file://$WORK/page.html" >/dev/null
png=$("${PAGE_CHECK[@]}" png "$WORK/shot.png")
check_eq "the screenshot is 1280 wide" "1280" "$(val width "$png")"
check "the page is drawn (not blank)" "yes" "$([[ $(val drawn_permille "$png") -ge 20 ]] && echo yes)"
check "the limit lines are drawn in red" "yes" "$([[ $(val red "$png") -ge 500 ]] && echo yes)"
check "the trips and warnings in orange" "yes" "$([[ $(val orange "$png") -ge 50 ]] && echo yes)"

# ---- 2. From a live daemon behind a real Postfix ----------------------------
cat >"$WORK/live.conf" <<'CONF'
level { name: "subscription" }
level { name: "domain" }
level { name: "mailbox" limit { window: "1h" max: 2 } }
entity { level: "subscription" name: "acme" }
entity { level: "domain" name: "acme.example" parent: "acme" }
CONF
sl_policyd_start "$WORK/live.conf" || exit 1
sl_postfix_start || { cat "$WORK/postfix.log"; exit 1; }
for i in 1 2; do
  check "alice's message $i accepted" "queued as" "$(sl_send alice@acme.example r$i@remote.example)"
done
check "alice's third is deferred" "limit 2/1h exceeded" "$(sl_send alice@acme.example r3@remote.example)"
check "bob's message accepted" "queued as" "$(sl_send bob@acme.example r4@remote.example)"
"$SLUICE" --socket "$SL_ADMIN" report --json -o "$WORK/live.json" 2>/dev/null
check_eq "the daemon counts alice's two messages that passed" "2" \
  "$(json "$WORK/live.json" "[s['total_messages'] for s in d['series'] if s['entity'] == 'alice@acme.example'][0]")"
check "with her limit" "2" \
  "$(json "$WORK/live.json" "[r['limit'] for s in d['series'] if s['entity'] == 'alice@acme.example' for r in s['rule']]")"
"$SLUICE" --socket "$SL_ADMIN" report -o "$WORK/live.html" 2>/dev/null
check_eq "report from the daemon writes the page" "0" "$?"
chrome --dump-dom "file://$WORK/live.html" >"$WORK/live-dom.html"
dom=$("${PAGE_CHECK[@]}" dom "$WORK/live-dom.html")
check "alice and bob are drawn" "alice@acme.example,bob@acme.example" \
  "$(val entities.polyline.series "$dom")"
check_eq "alice's trip is on the timeline" "alice@acme.example" "$(val entities.circle.trip "$dom")"
check "the limit of 2 is drawn" "2" "$(val limits "$dom")"
check "acme's drill-down holds acme.example" "acme.example" "$(val entities.details.domain "$dom")"

# ---- 3. Refusals -------------------------------------------------------------
echo '{"series": "not a list"' >"$WORK/bad.json"
"$SLUICE" report --from-json "$WORK/bad.json" -o "$WORK/bad.html" 2>"$WORK/err"
check_eq "bad data: exit 1" "1" "$?"
check "and says so" "not report data" "$(cat "$WORK/err")"
check_eq "and writes nothing" "no" "$([[ -e "$WORK/bad.html" ]] && echo yes || echo no)"
"$SLUICE" report --from-json "$WORK/data.json" -o "$WORK/again.html" 2>/dev/null
check_eq "saved data makes the same page" "$(md5sum <"$WORK/page.html")" \
  "$(md5sum <"$WORK/again.html")"
"$SLUICE" report --top 0 2>"$WORK/err"
check_eq "--top 0: exit 2" "2" "$?"
"$SLUICE" report --bogus 2>"$WORK/err"
check_eq "an unknown option: exit 2" "2" "$?"
"$SLUICE" --socket "/tmp/sluice-none-$$.sock" report -o "$WORK/none.html" 2>"$WORK/err"
check_eq "no daemon: exit 2" "2" "$?"
check "and says so" "cannot reach" "$(cat "$WORK/err")"
"$SLUICE" report --from-json "$WORK/data.json" -o "$WORK/no/such/dir/page.html" 2>"$WORK/err"
check_eq "an unwritable output: exit 1" "1" "$?"
check "and names it" "cannot write" "$(cat "$WORK/err")"

echo "$SL_FAILURES failure(s)"
[[ $SL_FAILURES -eq 0 ]]
