#!/usr/bin/env bash
# The HTML report of `sov plan --report --html FILE` end to end: the CLI
# writes it; it references nothing outside itself (no http(s) src / href /
# url(), no @import); it parses as XML; then headless Chromium (the
# system's, driven by puppeteer-core from tests/browser, installed with
# `npm ci`) renders it offline and tests/browser/plan_report.mjs checks the
# three charts (#chart-speed, #chart-fit, #chart-cost: <svg> elements with
# enough drawn elements on screen and the texts they must show), the
# tables, that nothing else is requested, and takes screenshots -- the
# full page and each chart, under $SOV_BUILD/screenshots/ -- decoding each
# PNG to check it is not blank. No Chromium process is left behind.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
abs() { case $1 in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "$1" ;; esac; }
if [ -n "${SOV_BIN:-}" ]; then SOV=$(abs "$SOV_BIN"); else SOV=$root/build/sov; fi
if [ -n "${SOV_BUILD:-}" ]; then BUILD=$(abs "$SOV_BUILD"); else BUILD=$root/build; fi
shots=$BUILD/screenshots
tmp=$(mktemp -d)
profile=$tmp/chromium-profile

nfail=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; nfail=$((nfail + 1)); }
check() { if [ "$2" -eq 0 ]; then pass "$1"; else fail "$1" "$3"; fi; }

# shellcheck source=tests/browser/lib.sh
. "$root/tests/browser/lib.sh"
browser_profile "$profile"
cleanup() {
    local p
    for p in $(browser_leftovers); do kill -9 "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT

if [ ! -x "$SOV" ]; then
    fail "plan html setup" "$SOV is missing (build first)"
    exit 1
fi

# --- the report ---
"$SOV" plan --report --html "$tmp/plan.html" >"$tmp/out" 2>"$tmp/err"
rc=$?
check "sov plan --report --html FILE exits 0" $rc "rc $rc: $(head -c 400 "$tmp/err")"
if [ ! -s "$tmp/plan.html" ]; then
    fail "sov plan --report --html writes the file" "no $tmp/plan.html (or empty)"
    exit 1
fi
pass "sov plan --report --html writes the file ($(wc -c <"$tmp/plan.html") bytes)"
grep -q "wrote $tmp/plan.html" "$tmp/out"
check "sov plan says where it wrote the report" $? "$(tail -n 2 "$tmp/out")"

ext=$(grep -Eno "(src|href)[[:space:]]*=[[:space:]]*[\"']?[[:space:]]*(https?:|//)|url\([[:space:]]*[\"']?[[:space:]]*(https?:|//)|@import" \
    "$tmp/plan.html" | head -n 5 | paste -sd ' ')
check "the report references no external URL (src/href/url(), @import)" $([ -z "$ext" ]; echo $?) "$ext"
for id in chart-speed chart-fit chart-cost; do
    grep -q "<svg[^>]* id=\"$id\"" "$tmp/plan.html"
    check "the report has <svg id=\"$id\">" $? "not found"
done
python3 -c 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])' "$tmp/plan.html" 2>"$tmp/xml"
check "the report is well-formed XML (python xml.dom)" $? "$(tail -n 1 "$tmp/xml")"

# --- headless Chromium ---
browser_setup || exit 1

mkdir -p "$shots"
rm -f "$shots"/plan-report.png "$shots"/plan-chart-*.png
browser_run plan_report.mjs "$tmp/plan.html" "$shots" "$chromium" "$profile"
echo "INFO browser checks took $browser_secs s; screenshots in $shots"
for f in plan-report.png plan-chart-speed.png plan-chart-fit.png plan-chart-cost.png; do
    [ -s "$shots/$f" ]
    check "screenshot $f saved" $? "no $shots/$f"
done
sleep 0.2
left=$(browser_leftovers | paste -sd ' ')
check "no chromium process left behind" $([ -z "$left" ]; echo $?) "pids $left"
[ "$nfail" -eq 0 ]
