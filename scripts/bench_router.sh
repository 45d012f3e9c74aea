#!/usr/bin/env bash
# Router overhead (the last part of `make bench`): what `sov serve --config`
# with one openai backend adds to a request, on 127.0.0.1.
#   1. fake upstream (bench/router_bench upstream: a real HTTP/1.1 server with
#      fixed answers and paced SSE chunks that carry their send time) -> the
#      router-only overhead;
#   2. a `sov serve` box with stories260K (nproc - 1 threads) -> the
#      realistic one (its own jitter is larger than the router's overhead).
# For each, bench/router_bench run measures direct vs through the router,
# interleaved: 2000 sequential non-streamed requests back to back, 500 with
# 2 ms pauses (idle CPUs), streamed chunks (per-chunk delay), and 16
# concurrent streams (chunks or tokens per second, router / direct). The
# added latency is the difference of the distributions' percentiles. Prints
# the targets (per request p50 added < 0.2 ms, p99 < 1 ms; no throughput
# loss at 16 streams) with met / NOT met; a missed target does not fail the
# script. JSON to bench-cache/bench_router.json.
# usage: bash scripts/bench_router.sh [BUILD_DIR]
set -euo pipefail
BUILD=${1:-build}
SOV=$BUILD/sov
RB=$BUILD/router_bench
SH=${SOV_SHARED:-../shared}
BOX_MODEL=${BENCH_ROUTER_MODEL:-$SH/models/stories260K.gguf}
CACHE=bench-cache
READY_TIMEOUT=${BENCH_ROUTER_READY_TIMEOUT:-60}
RUN_TIMEOUT=${BENCH_ROUTER_RUN_TIMEOUT:-120}

if [ ! -x "$SOV" ]; then
    echo "bench_router: $SOV not found; run 'make build' first" >&2
    exit 1
fi
if [ ! -x "$RB" ] || [ bench/router_bench.c -nt "$RB" ]; then
    make --no-print-directory BUILD="$BUILD" "$RB" >&2
fi
mkdir -p "$CACHE"

TMP=$(mktemp -d)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cpu_busy() { # percent of all CPUs busy over 1 s, from /proc/stat
    local a b
    read -r -a a < /proc/stat
    sleep 1
    read -r -a b < /proc/stat
    local idle=$(( (b[4] + b[5]) - (a[4] + a[5]) )) tot=0 i
    for i in 1 2 3 4 5 6 7 8; do tot=$(( tot + b[i] - a[i] )); done
    [ "$tot" -gt 0 ] && echo $(( 100 * (tot - idle) / tot )) || echo 0
}
busy=$(cpu_busy)
if [ "$busy" -gt 15 ]; then
    echo "bench_router: warning: the CPUs were ${busy} % busy before the run; the tails (p99) will be noisy" >&2
fi

# start_sov NAME ARGS...: sov serve on a free port; sets URL and LAST_PID
start_sov() {
    local name=$1
    shift
    "$SOV" serve --port 0 "$@" 2> "$TMP/$name.log" &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    URL=""
    local deadline=$((SECONDS + READY_TIMEOUT))
    while :; do
        if ! kill -0 "$LAST_PID" 2>/dev/null; then
            echo "bench_router: $name (sov serve) exited before it was ready:" >&2
            cat "$TMP/$name.log" >&2
            exit 1
        fi
        [ -z "$URL" ] && URL=$(sed -n 's/.*listening on \(http:\/\/[^ ]*\).*/\1/p' "$TMP/$name.log" | head -n 1)
        if [ -n "$URL" ] && grep -q 'ready' "$TMP/$name.log"; then break; fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "bench_router: $name (sov serve) not ready after ${READY_TIMEOUT} s:" >&2
            cat "$TMP/$name.log" >&2
            exit 1
        fi
        sleep 0.1
    done
}

# 1. the fake upstream (it exits by itself after --max-s)
"$RB" upstream --max-s 600 > "$TMP/up.port" &
PIDS+=("$!")
for _ in $(seq 1 100); do
    [ -s "$TMP/up.port" ] && break
    sleep 0.05
done
UP_PORT=$(cat "$TMP/up.port")
[ -n "$UP_PORT" ] || { echo "bench_router: the fake upstream did not start" >&2; exit 1; }
FAKE=http://127.0.0.1:$UP_PORT

# 2. the box: a sov serve of its own with the tiny model
BOX=""
if [ -f "$BOX_MODEL" ]; then
    # one core less than the machine has: the router and the client need
    # one; sharing all cores with the box, the router's loop thread (nice 0)
    # would stall the box's compute threads and the ratio would measure that
    BOX_THREADS=$(( $(nproc) > 1 ? $(nproc) - 1 : 1 ))
    start_sov box -m "$BOX_MODEL" -np 16 -t "$BOX_THREADS" -a stories260K
    BOX=$URL
else
    echo "bench_router: $BOX_MODEL not found (set SOV_SHARED); only the fake upstream is measured" >&2
fi

# 3. the router: one openai backend per upstream, an alias each
{
    cat <<EOF
[server]
host = 127.0.0.1
port = 0
health_interval = 5s

[backend.fake]
type = openai
url = $FAKE/v1
connect_timeout = 2s
first_byte_timeout = 30s
idle_timeout = 30s
max_concurrent = 64

[model.fast]
backends = fake
remote_model = fake
EOF
    if [ -n "$BOX" ]; then
        cat <<EOF

[backend.box]
type = openai
url = $BOX/v1
connect_timeout = 2s
first_byte_timeout = 30s
idle_timeout = 30s
max_concurrent = 64

[model.story]
backends = box
remote_model = stories260K
EOF
    fi
} > "$TMP/r.ini"
start_sov router --config "$TMP/r.ini"
ROUTER=$URL
ROUTER_PID=$LAST_PID

echo "bench_router: fake upstream $FAKE, box ${BOX:-none}, router $ROUTER" >&2
timeout "$RUN_TIMEOUT" "$RB" run --direct "$FAKE" --router "$ROUTER" --direct-model fake --router-model fast \
    --n 2000 --idle-n 500 --idle-us 2000 --stream-reqs 20 --chunks 100 --gap-us 1000 \
    --streams 16 --tp-chunks 500 --tp-gap-us 1000 --tp-flood 2000 --tp-reps 3 \
    --router-pid "$ROUTER_PID" --json "$TMP/fake.json"
if [ -n "$BOX" ]; then
    timeout "$RUN_TIMEOUT" "$RB" run --box --direct "$BOX" --router "$ROUTER" --direct-model stories260K \
        --router-model story --n 1000 --max-tokens 4 --idle-n 300 --idle-us 2000 --stream-reqs 10 --chunks 100 \
        --streams 16 --tp-chunks 400 --tp-reps 3 --router-pid "$ROUTER_PID" --json "$TMP/box.json"
fi
{
    printf '{"fake": %s' "$(cat "$TMP/fake.json")"
    [ -n "$BOX" ] && printf ', "box": %s' "$(cat "$TMP/box.json")"
    printf '}\n'
} > "$CACHE/bench_router.json"
echo "bench_router: JSON written to $CACHE/bench_router.json" >&2
