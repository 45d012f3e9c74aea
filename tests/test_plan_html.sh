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

# The ids of the processes started with this test's own Chromium profile
# (read from /proc, the pattern from a file so grep does not match itself).
printf -- '--user-data-dir=%s\n' "$profile" >"$tmp/pattern"
leftovers() {
    grep -laF -f "$tmp/pattern" /proc/[0-9]*/cmdline 2>/dev/null | sed -n 's|^/proc/\([0-9]*\)/cmdline$|\1|p'
}
cleanup() {
    local p
    for p in $(leftovers); do kill -9 "$p" 2>/dev/null; done
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
chromium=${CHROMIUM:-}
[ -n "$chromium" ] || chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ] || [ ! -x "$chromium" ]; then
    fail "chromium" "not installed (scripts/deps.sh installs the Debian package chromium; or set CHROMIUM)"
    exit 1
fi
for tool in node npm; do
    command -v "$tool" >/dev/null 2>&1 || { fail "browser setup" "$tool not found (need node >= 20 and npm)"; exit 1; }
done
cd "$root/tests/browser" || { fail "browser setup" "no tests/browser"; exit 1; }
# npm ci only when the lock file changed since the last install here
stamp=node_modules/.sov-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    if ! timeout -k 5 180 npm ci --no-audit --no-fund --prefer-offline --loglevel=error >"$tmp/npm" 2>&1; then
        why=$(grep -v '^\s*$' "$tmp/npm" | grep -vE 'complete log|behind a proxy' | head -n 4 | paste -sd ';' | cut -c1-400)
        fail "browser setup" "npm ci failed: ${why:-no output}"
        exit 1
    fi
    echo "$want" >"$stamp"
fi

mkdir -p "$shots"
rm -f "$shots"/plan-report.png "$shots"/plan-chart-*.png
t0=$SECONDS
timeout -k 5 60 node plan_report.mjs "$tmp/plan.html" "$shots" "$chromium" "$profile" >"$tmp/node" 2>&1
rc=$?
cat "$tmp/node"
nfail=$((nfail + $(grep -c '^FAIL ' "$tmp/node")))
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    fail "browser checks" "did not finish within 60 s"
elif [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' "$tmp/node"; then
    fail "browser checks" "node exited $rc: $(grep -vE '^(PASS|INFO) ' "$tmp/node" | tail -n 3 | paste -sd ' ' | cut -c1-400)"
fi
echo "INFO browser checks took $((SECONDS - t0)) s; screenshots in $shots"
for f in plan-report.png plan-chart-speed.png plan-chart-fit.png plan-chart-cost.png; do
    [ -s "$shots/$f" ]
    check "screenshot $f saved" $? "no $shots/$f"
done
sleep 0.2
left=$(leftovers | paste -sd ' ')
check "no chromium process left behind" $([ -z "$left" ]; echo $?) "pids $left"
[ "$nfail" -eq 0 ]
