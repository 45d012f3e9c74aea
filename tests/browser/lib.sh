# Shared steps of the headless-Chromium tests (tests/test_plan_html.sh,
# tests/test_console.sh), sourced after they define fail() and nfail and
# set tmp (a temporary folder) and root (the repository).
#
#   browser_profile DIR   the Chromium profile folder this test uses; after
#                         it, browser_leftovers lists the ids of the
#                         processes started with it (from /proc, the pattern
#                         read from a file so grep does not match itself)
#   browser_setup         finds chromium (sets $chromium: $CHROMIUM, else
#                         the system's), checks node and npm, cds into
#                         tests/browser and runs `npm ci` when the lock file
#                         changed since the last install there; on failure
#                         a FAIL line and status 1
#   browser_run SCRIPT ARGS...
#                         runs node SCRIPT ARGS within 60 s, prints its
#                         output, counts its FAIL lines into nfail, and adds
#                         one FAIL when it timed out or exited non-zero
#                         without saying why; sets browser_secs

browser_profile() {
    printf -- '--user-data-dir=%s\n' "$1" >"$tmp/browser-pattern"
}

browser_leftovers() {
    grep -laF -f "$tmp/browser-pattern" /proc/[0-9]*/cmdline 2>/dev/null | sed -n 's|^/proc/\([0-9]*\)/cmdline$|\1|p'
}

browser_setup() {
    chromium=${CHROMIUM:-}
    [ -n "$chromium" ] || chromium=$(command -v chromium || command -v chromium-browser || true)
    if [ -z "$chromium" ] || [ ! -x "$chromium" ]; then
        fail "chromium" "not installed (scripts/deps.sh installs the Debian package chromium; or set CHROMIUM)"
        return 1
    fi
    local tool
    for tool in node npm; do
        command -v "$tool" >/dev/null 2>&1 || { fail "browser setup" "$tool not found (need node >= 20 and npm)"; return 1; }
    done
    cd "$root/tests/browser" || { fail "browser setup" "no tests/browser"; return 1; }
    local stamp=node_modules/.sov-lock-sha256 want why
    want=$(sha256sum package-lock.json | cut -d' ' -f1)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        if ! timeout -k 5 180 npm ci --no-audit --no-fund --prefer-offline --loglevel=error >"$tmp/npm" 2>&1; then
            why=$(grep -v '^\s*$' "$tmp/npm" | grep -vE 'complete log|behind a proxy' | head -n 4 | paste -sd ';' | cut -c1-400)
            fail "browser setup" "npm ci failed: ${why:-no output}"
            return 1
        fi
        echo "$want" >"$stamp"
    fi
}

browser_run() {
    local t0=$SECONDS rc
    timeout -k 5 60 node "$@" >"$tmp/node" 2>&1
    rc=$?
    browser_secs=$((SECONDS - t0))
    cat "$tmp/node"
    nfail=$((nfail + $(grep -c '^FAIL ' "$tmp/node")))
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        fail "browser checks" "did not finish within 60 s"
    elif [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' "$tmp/node"; then
        fail "browser checks" "node exited $rc: $(grep -vE '^(PASS|INFO) ' "$tmp/node" | tail -n 3 | paste -sd ' ' | cut -c1-400)"
    fi
}
