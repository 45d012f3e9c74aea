#!/usr/bin/env bash
# `make demo`: both architectures and the hybrid on this one machine.
#
#   the box          `sov serve -m MODEL` in its own network namespace behind
#                    a veth pair (198.18.x.2:8080), or on another loopback
#                    port where namespaces cannot be made (not root, no ip)
#   the workstation  `sov serve --config` from examples/hybrid.ini (the
#                    documented example): local models here, the box remote
#
# then a scripted mix of requests (local-only, normal, the box-only alias,
# overflow under load, a JSON-schema request), a live table of how each was
# routed, `sov plan`'s verdicts on the two architectures, and the console
# URL. Interactive: the servers stay up until Ctrl-C, which stops them and
# removes the namespace. `--once`: exits after the scripted part (tests).
#
# usage: scripts/demo.sh [BUILD] [--once]
# env: SOV_MODEL (a GGUF to serve; default ../shared/models/stories260K.gguf,
# else a small model made with `sov synth`), SOV_SHARED, SOV_DEMO_LOOPBACK=1
# (the box on loopback even where a namespace could be made).
set -u
BUILD=build ONCE=0
for a in "$@"; do
    case "$a" in
    --once) ONCE=1 ;;
    -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) BUILD=$a ;;
    esac
done
SOV=$BUILD/sov
SH=${SOV_SHARED:-../shared}
EXAMPLE=examples/hybrid.ini
DEMO=$BUILD/demo
[ -x "$SOV" ] || { echo "demo: no $SOV (run make build)" >&2; exit 1; }
[ -f "$EXAMPLE" ] || { echo "demo: $EXAMPLE missing (run from the repository root)" >&2; exit 1; }
mkdir -p "$DEMO"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

say() { printf '%s\n' "$*"; }
if [ -t 1 ]; then B=$'\e[1m' D=$'\e[2m' G=$'\e[32m' R=$'\e[31m' N=$'\e[0m'; else B="" D="" G="" R="" N=""; fi

# ---- the model
MODEL=${SOV_MODEL:-$SH/models/stories260K.gguf}
if [ ! -f "$MODEL" ]; then
    if [ -n "${SOV_MODEL:-}" ]; then
        echo "demo: SOV_MODEL=$SOV_MODEL not found" >&2
        exit 1
    fi
    MODEL=$DEMO/synth-tiny-q8_0.gguf
    say "demo: $SH/models/stories260K.gguf not found: serving a small random-weight model made with"
    say "      'sov synth tiny --type q8_0' instead (its text is noise; the routing is the point)"
    [ -f "$MODEL" ] || "$SOV" synth tiny --type q8_0 --seed 1 -q -o "$MODEL" || exit 1
fi
MODEL=$(cd "$(dirname "$MODEL")" && pwd)/$(basename "$MODEL")
NAME=$(basename "$MODEL" .gguf)
SECOND=$SH/models/llama-2-tiny-random.gguf
[ -f "$SECOND" ] && SECOND=$(cd "$(dirname "$SECOND")" && pwd)/$(basename "$SECOND") || SECOND=$MODEL

# ---- cleanup: every process and the namespace, whatever happens
NS="" VH="" BOX_PID="" WS_PID="" LOAD_PIDS=""
cleanup() {
    trap '' INT TERM
    trap - EXIT
    local p
    for p in $LOAD_PIDS; do kill "$p" 2>/dev/null; done
    for p in $WS_PID $BOX_PID; do kill -TERM "$p" 2>/dev/null; done
    for p in $WS_PID $BOX_PID; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    if [ -n "$NS" ]; then
        ip netns del "$NS" 2>/dev/null
        ip link del "$VH" 2>/dev/null
    fi
}
trap cleanup EXIT
trap 'say ""; say "demo: stopping"; exit 0' INT TERM

# waits (at most $2 s) for a line matching $3 in file $1
wait_line() {
    local i
    for i in $(seq $(($2 * 20))); do
        grep -q "$3" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}
url_of() { sed -n 's/.*listening on \(http:\/\/[^ ]*:[0-9][0-9]*\) (.*/\1/p' "$1" | head -n 1; }

# ---- the box: a namespace when possible
BOX_HOST="" BOX_HOW=""
if [ -z "${SOV_DEMO_LOOPBACK:-}" ] && [ "$(id -u)" -eq 0 ] && command -v ip >/dev/null 2>&1; then
    for third in $(seq 200 254); do
        if ! ip -4 addr show 2>/dev/null | grep -q "inet 198\.18\.$third\." \
            && ! ip -4 route show 2>/dev/null | grep -Eq "(^| )198\.18\.$third\.0/"; then
            NET=198.18.$third
            break
        fi
    done
    NS=sov-demo-$$ VH=sdh$$
    if [ -n "${NET:-}" ] && ip netns add "$NS" 2>/dev/null; then
        if ip link add "$VH" type veth peer name sdn$$ 2>/dev/null &&
            ip link set sdn$$ netns "$NS" && ip addr add "$NET.1/30" dev "$VH" && ip link set "$VH" up &&
            ip -n "$NS" addr add "$NET.2/30" dev sdn$$ && ip -n "$NS" link set sdn$$ up &&
            ip -n "$NS" link set lo up; then
            BOX_HOST=$NET.2
            BOX_HOW="network namespace $NS, veth $NET.1 <-> $NET.2"
        fi
    fi
    if [ -z "$BOX_HOST" ] && [ -n "$NS" ]; then ip netns del "$NS" 2>/dev/null; ip link del "$VH" 2>/dev/null; NS=""; fi
fi
if [ -n "$BOX_HOST" ]; then
    ip netns exec "$NS" "$SOV" serve -m "$MODEL" --host "$BOX_HOST" --port 8080 -np 8 -t 1 --chat-template llama2 \
        >"$DEMO/box.out" 2>"$DEMO/box.log" &
else
    BOX_HOW="loopback (no network namespace${SOV_DEMO_LOOPBACK:+: SOV_DEMO_LOOPBACK is set}${SOV_DEMO_LOOPBACK:-: needs root and iproute2})"
    "$SOV" serve -m "$MODEL" --host 127.0.0.1 --port 0 -np 8 -t 1 --chat-template llama2 >"$DEMO/box.out" 2>"$DEMO/box.log" &
fi
BOX_PID=$!
if ! wait_line "$DEMO/box.log" 20 "ready in"; then
    echo "demo: the box did not start:" >&2
    tail -n 5 "$DEMO/box.log" >&2
    exit 1
fi
BOX_URL=$(url_of "$DEMO/box.log")
[ -n "$BOX_URL" ] || { echo "demo: no address in $DEMO/box.log" >&2; exit 1; }

# ---- the workstation: the documented example, with this machine's paths
# and the box's address put in (every other line as in examples/hybrid.ini)
CONF=$DEMO/hybrid.ini
sed -e "s|^port = .*|port = 0|" \
    -e "s|^url = http://198.18.0.2:8080/v1|url = $BOX_URL/v1|" \
    -e "s|^model = .*stories260K.gguf|model = $MODEL|" \
    -e "s|^model = .*llama-2-tiny-random.gguf|model = $SECOND|" \
    -e "s|^remote_model = stories260K|remote_model = $NAME|" \
    -e "s|^memory_budget = .*|memory_budget = 2G|" \
    "$EXAMPLE" >"$CONF"
if ! "$SOV" serve --config "$CONF" --check-config >"$DEMO/check.txt" 2>&1; then
    echo "demo: the config does not check:" >&2
    cat "$DEMO/check.txt" >&2
    exit 1
fi
rm -f "$DEMO/sov-audit.jsonl"
"$SOV" serve --config "$CONF" >"$DEMO/ws.out" 2>"$DEMO/ws.log" &
WS_PID=$!
if ! wait_line "$DEMO/ws.log" 20 "listening on http://.*:[0-9]* ("; then
    echo "demo: the workstation did not start:" >&2
    tail -n 5 "$DEMO/ws.log" >&2
    exit 1
fi
WS_URL=$(url_of "$DEMO/ws.log")
[ -n "$WS_URL" ] || { echo "demo: no address in $DEMO/ws.log" >&2; exit 1; }
# ready when every backend is up and the preloaded model is in memory
for _ in $(seq 200); do
    curl -s -m 2 "$WS_URL/v1/backends" 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)["data"]
sys.exit(0 if d and all(b.get("health") == "up" for b in d) and all(b.get("loaded", True) for b in d if b["name"] == "small") else 1)
' 2>/dev/null && break
    sleep 0.1
done

say "${B}sov demo${N}: $NAME"
say "  box          $BOX_URL   ($BOX_HOW; sov serve -m)"
say "  workstation  $WS_URL   (sov serve --config $CONF, from $EXAMPLE)"
say ""

# ---- the scripted requests: one row each
printf "${B}%-34s %-9s %-8s %-46s %6s %8s${N}\n" "request" "model" "route" "reason" "tokens" "latency"
FAILED=0
# row LABEL MODEL BODY-EXTRA [CURL-ARGS...]: one chat request, one table row
row() {
    local label=$1 model=$2 extra=$3
    shift 3
    local body="{\"model\":\"$model\",\"messages\":[{\"role\":\"user\",\"content\":\"Tell me a story\"}],\"max_tokens\":${MAXTOK:-24},\"seed\":1$extra}"
    local t0 t1 code
    t0=$(date +%s%N)
    code=$(curl -s -m 30 -D "$DEMO/h.txt" -o "$DEMO/b.json" -w '%{http_code}' "$WS_URL/v1/chat/completions" \
        -H 'Content-Type: application/json' "$@" -d "$body")
    t1=$(date +%s%N)
    local be rs tok
    be=$(tr -d '\r' <"$DEMO/h.txt" | sed -n 's/^[Xx]-[Ss]ov-[Bb]ackend: //p')
    rs=$(tr -d '\r' <"$DEMO/h.txt" | sed -n 's/^[Xx]-[Ss]ov-[Rr]oute-[Rr]eason: //p')
    tok=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["usage"]["completion_tokens"])' "$DEMO/b.json" 2>/dev/null)
    local mark="$G" ok=1
    [ "$code" = 200 ] || { mark="$R"; ok=0; FAILED=1; }
    printf "%s%-34s %-9s %-8s %-46.46s %6s %6d ms${N}\n" "$mark" "$label" "$model" "${be:-HTTP $code}" "${rs:--}" \
        "${tok:--}" $(((t1 - t0) / 1000000))
    LAST_BACKEND=$be LAST_REASON=$rs LAST_OK=$ok
}

row "normal: here first" stories ""
row "local-only alias" private ""
row "local-only by header" stories "" -H 'X-Sov-Privacy: local-only'
row "an alias only the box has" big ""
row "second local model" tiny ""
MAXTOK=120 row "JSON schema (structured output)" stories \
    ',"temperature":0.8,"response_format":{"type":"json_schema","json_schema":{"name":"hero","strict":true,"schema":{"type":"object","properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer","minimum":1,"maximum":99}},"required":["name","age"],"additionalProperties":false}}}'
if [ "$LAST_OK" = 1 ]; then
    if python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["choices"][0]["message"]["content"]; d=json.loads(m); assert set(d)=={"name","age"} and 1<=d["age"]<=99; print("   ", m)' "$DEMO/b.json" 2>/dev/null; then
        :
    else
        say "${R}    the JSON-schema answer did not parse against its schema${N}"
        FAILED=1
    fi
fi

# overflow: 24 long requests at once fill the 4 local slots and the queue
# (overflow_queue = 8 in the example); then one more goes to the box
for i in $(seq 24); do
    curl -s -m 60 -o /dev/null "$WS_URL/v1/chat/completions" -H 'Content-Type: application/json' \
        -d "{\"model\":\"stories\",\"messages\":[{\"role\":\"user\",\"content\":\"Once\"}],\"max_tokens\":1000,\"seed\":$i,\"ignore_eos\":true}" &
    LOAD_PIDS="$LOAD_PIDS $!"
done
sleep 0.3
row "overflow: under load (24 in flight)" stories ""
OVER_BACKEND=$LAST_BACKEND OVER_REASON=$LAST_REASON
# the load's clients hang up: the server stops their generations
for p in $LOAD_PIDS; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
LOAD_PIDS=""
sleep 0.3
row "after the load" stories ""

say ""
say "${B}routing${N} (GET $WS_URL/v1/backends; audit log $DEMO/sov-audit.jsonl):"
curl -s -m 5 "$WS_URL/v1/backends" | python3 -c '
import json, sys
for b in json.load(sys.stdin).get("data", []):
    print("  %-6s %-7s %-5s breaker %-7s %4s ok %3s failed  %s" % (b.get("name", "?"), b.get("type", "?"),
          b.get("health", "?"), b.get("breaker", "?"), b.get("requests_ok", "?"), b.get("requests_failed", "?"),
          b.get("where", "")))
' 2>/dev/null || say "  (no /v1/backends)"
if [ -f "$DEMO/sov-audit.jsonl" ]; then
    say "  audit log: $(wc -l <"$DEMO/sov-audit.jsonl") lines, one per request"
fi

say ""
say "${B}sov plan${N}: the two architectures (sov plan --report has the whole comparison)"
"$SOV" plan --check "70B Q4 on ryzen-ai-max-395 at 8 tok/s" --check "70B Q4 on dgx-spark at 5 tok/s" \
    --check "the hybrid costs less than cloud-h100 over 18 months" >"$DEMO/plan.txt" 2>&1
sed -n 's/^\[\(..\)\] "\(.*\)"$/  [\1] \2/p; s/^     \([a-z]*: .*\)$/       \1/p' "$DEMO/plan.txt"

say ""
say "${B}console${N}: $WS_URL/   (chat and status; the box's own: $BOX_URL/)"
if [ "$FAILED" != 0 ]; then
    say "${R}demo: some requests failed (logs in $DEMO/)${N}"
    exit 1
fi
case "$OVER_REASON" in
overflow*) ;;
*) say "${D}demo: the request under load was not overflowed to the box (it ran on ${OVER_BACKEND:-?}: ${OVER_REASON:-?})${N}" ;;
esac
if [ "$ONCE" = 1 ]; then
    say "demo: done (--once)"
    exit 0
fi
say "demo: the servers stay up; Ctrl-C stops them"
while kill -0 "$WS_PID" 2>/dev/null && kill -0 "$BOX_PID" 2>/dev/null; do sleep 1; done
say "demo: a server exited (logs in $DEMO/)"
exit 1
