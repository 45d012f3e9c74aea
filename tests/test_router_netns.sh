#!/usr/bin/env bash
# The hybrid setup over a real network link: the "box" (sov serve -m) runs in
# its own network namespace behind a veth pair; the "workstation" (sov serve
# --config, a local backend and the box as an openai backend) runs here.
# Checks routing to the box, privacy (local-only never reaches it), overflow,
# the link cut (clean errors within the timeouts, failover, health and
# breaker, a stream in flight ended by the idle timeout with an SSE error
# event), recovery when the link comes back, and an added delay (tc netem,
# when the kernel has it). Needs root, iproute2 and curl; skips cleanly
# (INFO, no PASS/FAIL) where network namespaces cannot be made.
# Prints PASS/FAIL/INFO lines for tests/run.sh.
set -u
SOV=${SOV_BIN:-build/sov}
SH=${SOV_SHARED:-../shared}
MODEL=$SH/models/stories260K.gguf
T_START=$SECONDS

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
info() { echo "INFO $1"; }
skip() { info "router netns: skipped: $1"; exit 0; }
# CONDITION; res $? NAME WHY-IF-FALSE (WHY is expanded after $?)
res() { if [ "$1" -eq 0 ]; then pass "$2"; else fail "$2" "$3"; fi; }

# ---- can this run here?
[ "$(id -u)" -eq 0 ] || skip "not root"
command -v ip >/dev/null 2>&1 || skip "ip (iproute2) not installed"
command -v curl >/dev/null 2>&1 || skip "curl not installed"
command -v python3 >/dev/null 2>&1 || skip "python3 not installed"
[ -x "$SOV" ] || skip "no sov binary at $SOV"
[ -r "$MODEL" ] || skip "no model at $MODEL"
# the servers must talk to each other directly, not through a proxy
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

NS=sovtest-$$
VH=svh$$ # host side (<= 15 characters)
VN=svn$$ # namespace side
tmp=$(mktemp -d)
BOX_PID="" WS_PID="" STREAM_PID="" DOG_PID=""
ns_made=0 bh_made=0

cleanup() {
    trap '' INT TERM # nothing stops the cleanup half-way
    trap - EXIT
    if [ -n "$DOG_PID" ]; then
        local dog_kids
        dog_kids=$(pgrep -P "$DOG_PID" 2>/dev/null)
        kill "$DOG_PID" 2>/dev/null
        [ -n "$dog_kids" ] && kill $dog_kids 2>/dev/null # its sleep
    fi
    if [ -n "$STREAM_PID" ]; then
        pkill -P "$STREAM_PID" 2>/dev/null # its curl
        kill "$STREAM_PID" 2>/dev/null
    fi
    local p
    for p in $WS_PID $BOX_PID; do kill -TERM "$p" 2>/dev/null; done
    for p in $WS_PID $BOX_PID; do
        for _ in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    if [ "$ns_made" = 1 ]; then
        ip netns del "$NS" 2>/dev/null # takes the veth pair with it
        ip link del "$VH" 2>/dev/null  # in case the pair was made but never moved
    fi
    [ "$bh_made" = 1 ] && ip route del blackhole "$NET.0/30" metric 4242 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'fail "router netns: total time" "interrupted or over the time bound after $((SECONDS - T_START)) s"; exit 1' INT TERM

# a watchdog: the whole test ends within 60 s, whatever hangs (the TERM
# trap runs once the foreground command ends: no curl here waits over 10 s)
( sleep 48 && kill -TERM $$ 2>/dev/null ) &
DOG_PID=$!

# a /30 of 198.18.0.0/15 (test addresses) that nothing here uses yet
NET=""
for third in 0 $(seq 1 254); do
    if ! ip -4 addr show 2>/dev/null | grep -q "inet 198\.18\.$third\.[0-3]/" \
        && ! ip -4 route show 2>/dev/null | grep -Eq "(^| )198\.18\.$third\.0/"; then
        NET=198.18.$third
        break
    fi
done
[ -n "$NET" ] || skip "no free /30 in 198.18.0.0/16"
HIP=$NET.1 BIP=$NET.2

ip netns add "$NS" 2>"$tmp/ns.err" || skip "ip netns add failed (no CAP_NET_ADMIN?): $(head -c 200 "$tmp/ns.err" | tr '\n' ' ')"
ns_made=1
if ! { ip link add "$VH" type veth peer name "$VN" &&
       ip link set "$VN" netns "$NS" &&
       ip addr add "$HIP/30" dev "$VH" &&
       ip link set "$VH" up &&
       ip -n "$NS" addr add "$BIP/30" dev "$VN" &&
       ip -n "$NS" link set "$VN" up &&
       ip -n "$NS" link set lo up; } 2>"$tmp/veth.err"; then
    skip "cannot set up a veth pair into the namespace: $(head -c 200 "$tmp/veth.err" | tr '\n' ' ')"
fi
# with the veth down, the box's address must not be reached some other way
# (a default route to a gateway that answers any address, as in some
# sandboxes): a blackhole route behind the connected one drops it, as a cut
# cable would
ip route add blackhole "$NET.0/30" metric 4242 2>"$tmp/bh.err" && bh_made=1 ||
    info "router netns: no blackhole route ($(head -c 150 "$tmp/bh.err" | tr '\n' ' ')): the cut may leak to the default route"
info "router netns: namespace $NS, host $VH $HIP/30, box $VN $BIP/30"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
is_5xx() { [ "$1" = 502 ] || [ "$1" = 503 ] || [ "$1" = 504 ]; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; } # a <= b (decimals)

# waits (at most $2 s) for a line matching $3 in file $1
wait_line() {
    local f=$1 secs=$2 re=$3 i
    for i in $(seq $((secs * 20))); do
        grep -q "$re" "$f" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# ---- the box, inside the namespace
ip netns exec "$NS" "$SOV" serve -m "$MODEL" --host "$BIP" --port 8080 -t 2 -np 4 >"$tmp/box.out" 2>"$tmp/box.err" &
BOX_PID=$!
if ! wait_line "$tmp/box.err" 10 "ready in"; then
    fail "router netns: box starts in the namespace" "$(tail -c 300 "$tmp/box.err" | tr '\n' '|')"
    exit 1
fi
BOX=http://$BIP:8080
code=$(curl -sS -m 3 -o /dev/null -w '%{http_code}' "$BOX/health" 2>"$tmp/c.err")
[ "$code" = 200 ]
res $? "router netns: box reachable from the host over the veth" "HTTP $code $(head -c 200 "$tmp/c.err")"

# ---- the workstation, here
NETEM=0 NETEM_WHY=""
if command -v tc >/dev/null 2>&1; then
    if tc qdisc add dev "$VH" root netem delay 1ms 2>"$tmp/tc.err"; then
        NETEM=1
        tc qdisc del dev "$VH" root 2>/dev/null
    else
        NETEM_WHY=$(head -c 150 "$tmp/tc.err" | tr '\n' ' ')
    fi
else
    NETEM_WHY="no tc command"
fi
cat >"$tmp/ws.ini" <<EOF
[server]
host = 127.0.0.1
breaker_failures = 2
breaker_cooldown = 1s
health_interval = 500ms

[backend.local]
type = local
model = $MODEL
parallel = 1
threads = 2
preload = true

[backend.box]
type = openai
url = http://$BIP:8080/v1
connect_timeout = 1s
first_byte_timeout = 5s
idle_timeout = 2s
health = /health

; the same box with a first-byte timeout below the netem delay
[backend.boxslow]
type = openai
url = http://$BIP:8080/v1
connect_timeout = 1s
first_byte_timeout = 30ms
idle_timeout = 2s

[model.big]
backends = box
remote_model = stories260K

[model.bigslow]
backends = boxslow
remote_model = stories260K

[model.private]
backends = local
privacy = local-only

[model.stories]
backends = local, box
remote_model = stories260K
overflow_queue = 0
EOF
"$SOV" serve --config "$tmp/ws.ini" --host 127.0.0.1 --port 0 >"$tmp/ws.out" 2>"$tmp/ws.err" &
WS_PID=$!
if ! wait_line "$tmp/ws.err" 10 "ready in"; then
    fail "router netns: workstation starts" "$(tail -c 400 "$tmp/ws.err" | tr '\n' '|')"
    exit 1
fi
WPORT=$(sed -n 's/.*listening on http:\/\/[^ ]*:\([0-9][0-9]*\).*/\1/p' "$tmp/ws.err" | head -n 1)
if [ -z "$WPORT" ]; then
    fail "router netns: workstation prints its port" "$(head -c 300 "$tmp/ws.err" | tr '\n' '|')"
    exit 1
fi
WS=http://127.0.0.1:$WPORT

# req NAME MODEL MAX_TOKENS TIMEOUT [curl args]: POST /v1/completions to the
# workstation; $tmp/NAME.body, $tmp/NAME.hdr; prints "STATUS SECONDS"
req() {
    local name=$1 model=$2 n=$3 to=$4; shift 4
    curl -sS -m "$to" -o "$tmp/$name.body" -D "$tmp/$name.hdr" -w '%{http_code} %{time_total}' "$@" \
        -H 'Content-Type: application/json' "$WS/v1/completions" \
        -d "{\"model\":\"$model\",\"prompt\":\"Once upon a time\",\"max_tokens\":$n,\"temperature\":0,\"ignore_eos\":true}" 2>"$tmp/$name.cerr"
}
# hdr NAME HEADER: a response header's value
hdr() { grep -i "^$2:" "$tmp/$1.hdr" 2>/dev/null | head -n 1 | cut -d: -f2- | sed 's/^ *//; s/\r$//'; }
# why NAME: a short description of a response for FAIL lines
why() { echo "HTTP $(head -n 1 "$tmp/$1.hdr" 2>/dev/null | tr -d '\r'); backend '$(hdr "$1" X-Sov-Backend)'; reason '$(hdr "$1" X-Sov-Route-Reason)'; $(head -c 200 "$tmp/$1.body" 2>/dev/null) $(head -c 100 "$tmp/$1.cerr" 2>/dev/null)"; }
# is_json_error NAME: the body is an OpenAI-shaped error object
is_json_error() {
    python3 -c 'import json, sys
e = json.load(open(sys.argv[1])).get("error")
sys.exit(0 if isinstance(e, dict) and isinstance(e.get("message"), str) else 1)' "$tmp/$1.body" 2>/dev/null
}
# jq_code NAME: the error's code and message, shortened
jq_code() {
    python3 -c 'import json, sys
e = json.load(open(sys.argv[1]))["error"]
print("code %s: %s" % (e.get("code"), e.get("message", "")[:160]))' "$tmp/$1.body" 2>/dev/null
}
# box_count: completion requests the box itself finished (its own metrics)
box_count() {
    curl -sS -m 3 "$BOX/metrics" 2>/dev/null | awk '
        /^sov_requests_total\{/ && /endpoint="\/v1\/(chat\/)?completions"/ { s += $NF; ok = 1 }
        /^# TYPE sov_requests_total/ { ok = 1 }
        END { if (ok) print s + 0; else print "ERR" }'
}
# be FIELD: the box backend's FIELD in the workstation's /v1/backends
be() {
    curl -sS -m 3 "$WS/v1/backends" 2>/dev/null | python3 -c 'import json, sys
for b in json.load(sys.stdin)["data"]:
    if b["name"] == "box":
        print(b.get(sys.argv[1]))' "$1" 2>/dev/null
}
# wait_be FIELD VALUE SECS
wait_be() {
    local i
    for i in $(seq $(($3 * 10))); do
        [ "$(be "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
wait_be health up 5
res $? "router netns: workstation sees the box up" "health '$(be health)'"

# ---- 1. big: answered by the box
c0=$(box_count)
r=$(req big1 big 8 10); st=${r% *}
# the box counts a request once its response has gone out, which may be
# just after the client has it: poll briefly
for i in $(seq 20); do
    c1=$(box_count)
    [ "$c1" != ERR ] && [ "$c0" != ERR ] && [ "$c1" -gt "$c0" ] && break
    sleep 0.05
done
[ "$st" = 200 ] && [ "$(hdr big1 X-Sov-Backend)" = box ]
res $? "router netns: big answered by the box (X-Sov-Backend: box)" "$(why big1)"
[ "$c0" != ERR ] && [ "$c1" != ERR ] && [ "$c1" -gt "$c0" ]
res $? "router netns: big reaches the box (its own sov_requests_total grows)" "box count $c0 -> $c1"

# ---- 2. privacy: local-only never reaches the box
c0=$(box_count)
r=$(req priv private 8 10); st=${r% *}
[ "$st" = 200 ] && [ "$(hdr priv X-Sov-Backend)" = local ]
res $? "router netns: private answered locally" "$(why priv)"
r=$(req privh stories 8 10 -H 'X-Sov-Privacy: local-only'); st=${r% *}
[ "$st" = 200 ] && [ "$(hdr privh X-Sov-Backend)" = local ]
res $? "router netns: stories + X-Sov-Privacy: local-only answered locally" "$(why privh)"
r=$(req privbig big 8 10 -H 'X-Sov-Privacy: local-only'); st=${r% *}
[ "$st" = 503 ] && is_json_error privbig
res $? "router netns: big + X-Sov-Privacy: local-only refused (503, no local backend)" "$(why privbig)"
sleep 0.2
c1=$(box_count)
[ "$c0" != ERR ] && [ "$c0" = "$c1" ]
res $? "router netns: local-only requests never reach the box (its counter unchanged)" "box count $c0 -> $c1"

# ---- 3. stories: local first; overflow to the box when the local slot is taken and one waits
r=$(req st1 stories 8 10); st=${r% *}
[ "$st" = 200 ] && [ "$(hdr st1 X-Sov-Backend)" = local ]
res $? "router netns: stories answered locally (preference order)" "$(why st1)"
# (ignore_eos: they run their whole length; the next one is sent once the
# workstation's own listing shows one waiting, not after a guessed sleep)
req ovA stories 1800 20 >"$tmp/ovA.res" &
pA=$!
req ovB stories 1800 20 >"$tmp/ovB.res" &
pB=$!
for i in $(seq 100); do
    q=$(curl -sS -m 3 "$WS/v1/backends" 2>/dev/null | python3 -c 'import json, sys
for b in json.load(sys.stdin)["data"]:
    if b["name"] == "local":
        print(b.get("queued"))' 2>/dev/null)
    [ "${q:-0}" -ge 1 ] 2>/dev/null && break
    sleep 0.05
done
r=$(req ovC stories 8 10); st=${r% *}
wait $pA $pB
if [ "$(cut -d' ' -f1 "$tmp/ovA.res")" = 200 ] && [ "$(cut -d' ' -f1 "$tmp/ovB.res")" = 200 ]; then
    [ "$st" = 200 ] && [ "$(hdr ovC X-Sov-Backend)" = box ] && grep -qi "overflow" <<<"$(hdr ovC X-Sov-Route-Reason)"
    res $? "router netns: stories overflows to the box when the local backend has one waiting" "$(why ovC)"
else
    fail "router netns: stories overflows to the box when the local backend has one waiting" \
        "the long requests failed: A $(cat "$tmp/ovA.res"), B $(cat "$tmp/ovB.res")"
fi

# ---- 4. delay (tc netem on the host side: every packet to the box 50 ms later)
if [ "$NETEM" = 1 ]; then
    t=$(req d0 big 4 10); base=${t#* }
    if tc qdisc add dev "$VH" root netem delay 50ms 2>"$tmp/tc.err"; then
        r=$(req d1 big 4 10); st=${r% *}; secs=${r#* }
        [ "$st" = 200 ] && [ "$(hdr d1 X-Sov-Backend)" = box ]
        res $? "router netns: big over a 50 ms delay still answered by the box" "$(why d1)"
        le 0.05 "$secs"
        res $? "router netns: big over a 50 ms delay takes at least the added round trip" "${secs}s (${base}s without)"
        r=$(req d2 bigslow 4 10); st=${r% *}; secs=${r#* }
        [ "$st" = 504 ] && is_json_error d2 && le "$secs" 2
        res $? "router netns: first_byte_timeout (30 ms) below the delay gives a clean 504" "$(why d2) in ${secs}s"
        tc qdisc del dev "$VH" root 2>/dev/null
    else
        info "router netns: tc netem delay 50ms failed: $(head -c 150 "$tmp/tc.err" | tr '\n' ' '); delay part skipped"
    fi
else
    info "tc netem unavailable: delay part skipped ($NETEM_WHY)"
fi

# ---- 5. the link cut, with a stream to the box in flight and idle kept
# connections to the box in the workstation's pool (as on any busy
# workstation: three requests at once leave some behind)
req pre1 big 8 10 >"$tmp/pre1.res" & p1=$!
req pre2 big 8 10 >"$tmp/pre2.res" & p2=$!
req pre3 big 8 10 >"$tmp/pre3.res"
wait $p1 $p2
# a token bucket on the box's side slows the stream (when the kernel has
# sch_tbf), so it is surely still running when the link goes
SHAPED=0
if command -v tc >/dev/null 2>&1 &&
    ip netns exec "$NS" tc qdisc add dev "$VN" root tbf rate 80kbit burst 4kb latency 10s 2>/dev/null; then
    SHAPED=1
fi
(
    curl -sS -N -m 20 -o "$tmp/stream.out" -D "$tmp/stream.hdr" -H 'Content-Type: application/json' "$WS/v1/completions" \
        -d '{"model":"big","prompt":"Once upon a time","max_tokens":2000,"ignore_eos":true,"stream":true}' \
        2>"$tmp/stream.cerr"
    echo $? >"$tmp/stream.rc"
    now >"$tmp/stream.end"
) &
STREAM_PID=$!
if wait_line "$tmp/stream.out" 5 '^data: {'; then
    ip link set "$VH" down
    t_cut=$(now)
    [ "$SHAPED" = 1 ] && ip netns exec "$NS" tc qdisc del dev "$VN" root 2>/dev/null
    streaming=1
else
    ip link set "$VH" down
    t_cut=$(now)
    [ "$SHAPED" = 1 ] && ip netns exec "$NS" tc qdisc del dev "$VN" root 2>/dev/null
    streaming=0
    fail "router netns: stream to big starts before the cut" "$(head -c 300 "$tmp/stream.out" "$tmp/stream.cerr" | tr '\n' '|')"
fi

# big with the link down: a clean error, within connect_timeout (1 s) +
# margin, also when it goes out on a kept connection (nothing can come back
# on it: waiting for first_byte_timeout, 120 s in examples/hybrid.ini, is
# a hang to the client); at the very least within first_byte_timeout (5 s)
r=$(req cut1 big 8 10); st=${r% *}; secs=${r#* }
info "router netns: big with the link down: HTTP $st in ${secs}s, $(jq_code cut1)"
is_5xx "$st" && is_json_error cut1
res $? "router netns: big with the link down: a clean 502/503/504 JSON error" "$(why cut1)"
le "$secs" 7
res $? "router netns: big with the link down: no hang (within first_byte_timeout 5 s + 2 s)" "took ${secs}s: $(why cut1)"
le "$secs" 3
res $? "router netns: big with the link down fails fast (connect timeout 1 s + 2 s margin)" \
    "took ${secs}s (a kept connection waits for first_byte_timeout?): $(why cut1)"
r=$(req cut2 big 8 10); st=${r% *}; secs=${r#* }
is_5xx "$st" && is_json_error cut2 && le "$secs" 3
res $? "router netns: big with the link down, again: a clean 502/503/504 JSON error within 3 s" "${secs}s: $(why cut2)"
# stories still answered (local, or failover)
ok=0
for i in 1 2 3; do
    r=$(req cuts$i stories 8 10); st=${r% *}
    [ "$st" = 200 ] && ok=$((ok + 1))
done
[ "$ok" = 3 ]
res $? "router netns: stories still answered with the link down (3 of 3)" "$ok of 3; last: $(why cuts3)"
# the workstation knows: health down or breaker open
down=0
for i in $(seq 40); do
    h=$(be health); b=$(be breaker)
    if [ "$h" = down ] || [ "$b" = open ]; then down=1; break; fi
    sleep 0.1
done
[ "$down" = 1 ]
res $? "router netns: /v1/backends shows the box down or its breaker open" "health '$h', breaker '$b'"
wait_be breaker open 3
res $? "router netns: the box's breaker opens with the link down" "breaker '$(be breaker)'"

# the stream in flight ends: an SSE error event and [DONE], within idle_timeout (2 s) + margin
if [ "$streaming" = 1 ]; then
    for i in $(seq 100); do kill -0 "$STREAM_PID" 2>/dev/null || break; sleep 0.1; done
    wait "$STREAM_PID" 2>/dev/null
    STREAM_PID=""
    src=$(cat "$tmp/stream.rc" 2>/dev/null || echo "none (still running)")
    took=$(awk -v a="$t_cut" -v b="$(cat "$tmp/stream.end" 2>/dev/null || now)" 'BEGIN { printf "%.3f", b - a }')
    last=$(grep '^data: ' "$tmp/stream.out" | tail -n 1)
    errev=$(grep '^data: {"error"' "$tmp/stream.out" | tail -n 1)
    if [ "$SHAPED" = 0 ] && [ -z "$errev" ] && [ "$last" = "data: [DONE]" ] &&
        grep -q '"finish_reason":"length"' "$tmp/stream.out"; then
        info "router netns: the stream (not slowed: no sch_tbf) finished before the cut; its part skipped"
    else
        [ "$src" = 0 ] && [ "$last" = "data: [DONE]" ] && [ -n "$errev" ]
        res $? "router netns: stream in flight at the cut ends with an SSE error event + [DONE]" \
            "curl rc $src; last events: $(grep '^data: ' "$tmp/stream.out" | tail -n 2 | cut -c1-200 | tr '\n' '|') $(head -c 150 "$tmp/stream.cerr")"
        le "$took" 5
        res $? "router netns: stream ended by the idle timeout (2 s) + 3 s margin after the cut" "${took}s after the cut"
        info "router netns: the stream ended ${took}s after the cut"
        [ -n "$errev" ] && info "router netns: stream error event: $(echo "$errev" | cut -c1-240)"
        [ "$SHAPED" = 1 ] || info "router netns: the stream was not slowed (no sch_tbf): it raced the cut"
    fi
fi

# ---- 6. the link back: big answered by the box again, breaker closed
ip link set "$VH" up
t_up=$(now)
ok=0
while le "$(elapsed "$t_up")" 10; do
    r=$(req back big 8 3); st=${r% *}
    if [ "$st" = 200 ] && [ "$(hdr back X-Sov-Backend)" = box ]; then ok=1; break; fi
    sleep 0.25
done
took=$(elapsed "$t_up")
[ "$ok" = 1 ]
res $? "router netns: link back up: big answered by the box again within 10 s" "last: $(why back)"
info "router netns: big answered again ${took}s after the link came back"
wait_be breaker closed 3
res $? "router netns: link back up: the box's breaker is closed" "breaker '$(be breaker)', health '$(be health)'"
wait_be health up 3
res $? "router netns: link back up: box health up" "health '$(be health)'"

# ---- 7. the far end cut: the box's side of the link goes down, this side
# stays up without carrier: nothing answers at all, not even "unreachable"
# (a box that lost power). The breaker is closed and a kept connection to
# the box is in the pool (far0).
r=$(req far0 big 8 10)
ip -n "$NS" link set "$VN" down
r=$(req far1 big 8 10); st=${r% *}; secs=${r#* }
info "router netns: far end down: big: HTTP $st in ${secs}s, $(jq_code far1)"
is_5xx "$st" && is_json_error far1
res $? "router netns: far end down: big gets a clean 502/503/504 JSON error" "$(why far1)"
le "$secs" 7
res $? "router netns: far end down: big: no hang (within first_byte_timeout 5 s + 2 s)" "took ${secs}s: $(why far1)"
le "$secs" 3
res $? "router netns: far end down: big fails fast (connect timeout 1 s + 2 s margin)" \
    "took ${secs}s (a kept connection waits for first_byte_timeout?): $(why far1)"
r=$(req far2 stories 8 10); st=${r% *}
[ "$st" = 200 ]
res $? "router netns: far end down: stories still answered" "$(why far2)"
wait_be health down 3
res $? "router netns: far end down: /v1/backends shows the box down" "health '$(be health)', breaker '$(be breaker)'"
ip -n "$NS" link set "$VN" up
t_up=$(now)
ok=0
while le "$(elapsed "$t_up")" 10; do
    r=$(req back2 big 8 3); st=${r% *}
    if [ "$st" = 200 ] && [ "$(hdr back2 X-Sov-Backend)" = box ]; then ok=1; break; fi
    sleep 0.25
done
[ "$ok" = 1 ]
res $? "router netns: far end back: big answered by the box again within 10 s" "last: $(why back2)"

# ---- the servers still run and stop cleanly
kill -TERM "$WS_PID" 2>/dev/null
for i in $(seq 50); do kill -0 "$WS_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$WS_PID" 2>/dev/null; then
    fail "router netns: workstation exits on SIGTERM within 5 s" "still running"
else
    wait "$WS_PID"; rc=$?
    [ "$rc" = 0 ]
    res $? "router netns: workstation exits 0 on SIGTERM" "exit status $rc; $(tail -c 300 "$tmp/ws.err" | tr '\n' '|')"
    WS_PID=""
fi
info "router netns: $((SECONDS - T_START)) s in all"
exit 0
