#!/usr/bin/env bash
# The web console of `sov serve` end to end. Two real servers on 127.0.0.1:
#   single  sov serve -m stories260K --port 0 --chat-template llama2
#   router  sov serve --config (a temporary file: a local stories260K, the
#           single server as a remote backend, an offline one) --api-key
# First plain HTTP checks of the console's files and the endpoints it uses
# (content types, ETag / 304, 404 for unknown paths and traversal, 405,
# the files open without a key while /v1 needs it, /v1/plan, /v1/plan/report,
# /v1/routes); then headless Chromium (the system's, driven by puppeteer-core
# from tests/browser) runs tests/browser/console.mjs: the chat streams, Stop
# aborts a long answer, the status page fills in, the API key flow, and
# screenshots under $SOV_BUILD/screenshots/ (console-chat.png,
# console-status.png and the single-model ones). Any page error, console
# error or failed request fails the test. Nothing is left running.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
abs() { case $1 in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "$1" ;; esac; }
if [ -n "${SOV_BIN:-}" ]; then SOV=$(abs "$SOV_BIN"); else SOV=$root/build/sov; fi
if [ -n "${SOV_BUILD:-}" ]; then BUILD=$(abs "$SOV_BUILD"); else BUILD=$root/build; fi
if [ -n "${SOV_SHARED:-}" ]; then SHARED=$(abs "$SOV_SHARED"); else SHARED=$root/../shared; fi
MODEL=$SHARED/models/stories260K.gguf
shots=$BUILD/screenshots
tmp=$(mktemp -d)
profile=$tmp/chromium-profile
KEY="console-test-key-$$"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

nfail=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; nfail=$((nfail + 1)); }
check() { if [ "$2" -eq 0 ]; then pass "$1"; else fail "$1" "$3"; fi; }

# shellcheck source=tests/browser/lib.sh
. "$root/tests/browser/lib.sh"
browser_profile "$profile"
PIDS=""
cleanup() {
    local p
    for p in $(browser_leftovers); do kill -9 "$p" 2>/dev/null; done
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
    for p in $PIDS; do
        for _ in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

[ -x "$SOV" ] || { fail "console setup" "$SOV is missing (build first)"; exit 1; }
[ -f "$MODEL" ] || { fail "console setup" "$MODEL is missing (set SOV_SHARED)"; exit 1; }
command -v curl >/dev/null || { fail "console setup" "curl not found"; exit 1; }

# starts a server (log $1, the rest its arguments); sets URL, or fails
start() {
    local log=$1
    shift
    "$SOV" serve "$@" >"$log" 2>&1 &
    PIDS="$PIDS $!"
    local i
    for i in $(seq 100); do
        grep -q "ready in" "$log" && break
        kill -0 $! 2>/dev/null || break
        sleep 0.1
    done
    URL=$(sed -n 's/.*listening on \(http:\/\/127\.0\.0\.1:[0-9][0-9]*\) (.*/\1/p' "$log" | head -n 1)
    grep -q "ready in" "$log" && [ -n "$URL" ]
}

t0=$SECONDS
if ! start "$tmp/single.log" -m "$MODEL" --port 0 --chat-template llama2 -np 2 -t 1; then
    fail "single server starts" "$(tail -n 3 "$tmp/single.log" | paste -sd ' ')"
    exit 1
fi
A=$URL
pass "sov serve -m stories260K is ready ($A)"
cat >"$tmp/router.ini" <<EOF
[server]
health_interval = 1s
[backend.small]
type = local
model = $MODEL
parallel = 2
threads = 1
chat_template = llama2
preload = true
[backend.box]
type = openai
url = $A/v1
[backend.offline]
type = openai
url = http://127.0.0.1:9/v1
connect_timeout = 1s
[model.stories]
backends = small, box, offline
[model.big]
backends = box
remote_model = stories260K
[model.private]
backends = small
privacy = local-only
EOF
if ! start "$tmp/router.log" --config "$tmp/router.ini" --port 0 --api-key "$KEY"; then
    fail "router starts" "$(tail -n 3 "$tmp/router.log" | paste -sd ' ')"
    exit 1
fi
B=$URL
pass "sov serve --config (local + remote + offline backends, --api-key) is ready ($B)"

# ---- plain HTTP: the files and the endpoints ----
# hdr URL [curl args]: status line and headers in $tmp/h, body in $tmp/b
hdr() { local u=$1; shift; rm -f "$tmp/h" "$tmp/b"; touch "$tmp/b"; curl -s -m 10 -D "$tmp/h" -o "$tmp/b" "$@" "$u"; }
status() { sed -n '1s/^HTTP\/[0-9.]* \([0-9]*\).*/\1/p' "$tmp/h"; }
header() { sed -n "s/^$1: *//Ip" "$tmp/h" | tr -d '\r' | head -n 1; }
for srv in "$A" "$B"; do
    for f in "/ text/html" "/status text/html" "/console/chat.js text/javascript" "/console/status.js text/javascript" \
        "/console/common.js text/javascript" "/console/style.css text/css" "/console/icon.svg image/svg+xml"; do
        set -- $f
        hdr "$srv$1"
        ct=$(header Content-Type)
        [ "$(status)" = 200 ] && case $ct in "$2"*) true ;; *) false ;; esac
        check "GET $1 is 200 $2 without a key (${srv##*:})" $? "status $(status), type '$ct'"
    done
done
hdr "$A/"
etag=$(header ETag)
cc=$(header Cache-Control)
csp=$(header Content-Security-Policy)
[ -n "$etag" ] && [ "$cc" = no-cache ]
check "pages carry an ETag and Cache-Control: no-cache" $? "ETag '$etag', Cache-Control '$cc'"
case $csp in *"default-src 'self'"*) r=0 ;; *) r=1 ;; esac
check "pages carry a Content-Security-Policy (this server only)" $r "'$csp'"
grep -qi '<script src="/console/chat.js"' "$tmp/b"
check "GET / is the chat page" $? "$(head -c 200 "$tmp/b")"
hdr "$A/" -H "If-None-Match: $etag"
[ "$(status)" = 304 ] && [ ! -s "$tmp/b" ]
check "If-None-Match with the ETag gives 304 and no body" $? "status $(status), $(wc -c <"$tmp/b") bytes"
hdr "$A/console/style.css" -H 'If-None-Match: "0000000000000000"'
check "a stale ETag gives the file (200)" $([ "$(status)" = 200 ]; echo $?) "status $(status)"
hdr "$A/" -I
check "HEAD / is 200 with the Content-Length of the page" \
    $([ "$(status)" = 200 ] && [ "$(header Content-Length)" -gt 1000 ]; echo $?) "status $(status), length $(header Content-Length)"
for p in /console/nope.js /console/ /console /index.html /status.html /console/../console/chat.js \
    /console/%2e%2e/chat.js /console//chat.js /console/chat.js/ /x/../console/chat.js; do
    hdr "$A$p" --path-as-is
    check "GET $p is 404" $([ "$(status)" = 404 ]; echo $?) "status $(status)"
done
hdr "$A/" -X POST -d x
check "POST / is 405" $([ "$(status)" = 405 ]; echo $?) "status $(status)"
for p in /v1/routes /v1/plan /v1/plan/report /v1/models /metrics; do
    hdr "$B$p"
    check "GET $p on the router without the key is 401" $([ "$(status)" = 401 ]; echo $?) "status $(status)"
done
hdr "$B/v1/plan" -H "Authorization: Bearer $KEY"
python3 - "$tmp/b" >"$tmp/py" 2>&1 <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
p = j["prices"]
assert p["in_per_m"] > 0 and p["out_per_m"] > 0 and p["currency"], p
assert len(j["sources"]) == 3 and all(len(s) > 10 for s in j["sources"]), j["sources"]
EOF
check "GET /v1/plan (with the key): prices per 1M tokens and 3 sources" $? "$(tail -n 1 "$tmp/py")"
hdr "$A/v1/plan/report"
ct=$(header Content-Type)
[ "$(status)" = 200 ] && case $ct in text/html*) true ;; *) false ;; esac &&
    grep -q '<svg[^>]* id="chart-speed"' "$tmp/b" && grep -q 'llama-3.1-70b' "$tmp/b"
check "GET /v1/plan/report is the plan's HTML report" $? "status $(status), type '$ct', $(wc -c <"$tmp/b") bytes"
curl -s -m 10 -o /dev/null "$A/v1/chat/completions" -d '{"model":"stories260K","messages":[{"role":"user","content":"hi"}],"max_tokens":5}'
curl -s -m 10 -o /dev/null "$A/v1/chat/completions" -d '{"model":"nope","messages":[]}'
hdr "$A/v1/routes"
python3 - "$tmp/b" >"$tmp/py" 2>&1 <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
d = j["data"]
assert j["last_seq"] == len(d) == 2, j
assert [e["seq"] for e in d] == [2, 1], d
assert d[0]["status"] == 404 and d[0]["backend"] == "none" and d[0]["decision"] == "unavailable", d[0]
assert d[1]["status"] == 200 and d[1]["backend"] == "stories260K" and d[1]["reason"] == "only backend", d[1]
assert d[1]["tokens_out"] == 5 and d[1]["tokens_in"] > 0 and d[1]["latency_ms"] > 0, d[1]
assert all("messages" not in e and "hi" not in json.dumps(e) for e in d), "prompt text in the log"
EOF
check "GET /v1/routes: the requests newest first, route, reason, status, tokens, no prompt" $? "$(tail -n 1 "$tmp/py")"
hdr "$A/v1/routes?after=1"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert [e["seq"] for e in j["data"]] == [2], j' "$tmp/b" 2>"$tmp/py"
check "GET /v1/routes?after=1 gives only the later one" $? "$(tail -n 1 "$tmp/py")"
hdr "$A/v1/routes?after=-1"
check "GET /v1/routes?after=-1 is 400" $([ "$(status)" = 400 ]; echo $?) "status $(status)"

# ---- headless Chromium ----
browser_setup || exit 1
mkdir -p "$shots"
rm -f "$shots"/console-*.png
browser_run console.mjs "$A" "$B" "$KEY" "$shots" "$chromium" "$profile"
echo "INFO browser checks took $browser_secs s; screenshots in $shots"
for f in console-chat.png console-status.png console-chat-single.png console-status-single.png; do
    [ -s "$shots/$f" ]
    check "screenshot $f saved" $? "no $shots/$f"
done

# ---- the servers came through it ----
for srv in "$A" "$B"; do
    code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$srv/health")
    check "the server is healthy after the browser (${srv##*:})" $([ "$code" = 200 ]; echo $?) "GET /health: $code"
done
sleep 0.2
left=$(browser_leftovers | paste -sd ' ')
check "no chromium process left behind" $([ -z "$left" ]; echo $?) "pids $left"
echo "INFO test_console took $((SECONDS - t0)) s"
[ "$nfail" -eq 0 ]
