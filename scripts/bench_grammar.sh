#!/usr/bin/env bash
# Grammar-constrained sampling cost (part of `make bench`, after the serving
# sweep): `sov serve` on tinyllama-1.1b Q4_0 with 8 slots, then 8 concurrent
# streaming /v1/completions clients, unconstrained and constrained by a
# nested JSON schema (response_format json_schema, strict), 3 waves of each
# in alternating order (scripts/bench_grammar.mjs, node, no npm packages).
# Targets (from the issue): constrained decode tok/s >= 90 % of
# unconstrained, and grammar mask time per token <= 5 % of the engine step
# time at 8 constrained streams (sov_grammar_mask_seconds_total /
# sov_grammar_masks_total and sov_inter_token_latency_seconds from /metrics).
# Table to stdout, JSON to bench-cache/bench_grammar.json; a missed target
# does not fail the script. usage: bash scripts/bench_grammar.sh [BUILD_DIR]
# Environment: BENCH_GRAMMAR_MODEL, BENCH_GRAMMAR_MAX_TOKENS (32),
# BENCH_GRAMMAR_REPS (3), BENCH_GRAMMAR_CHECK_MAX_TOKENS (256; the last wave,
# constrained outputs left to end where the grammar does: 0 = none),
# BENCH_GRAMMAR_READY_TIMEOUT (180 s).
set -euo pipefail
BUILD=${1:-build}
SOV=$BUILD/sov
SH=${SOV_SHARED:-../shared}
CACHE=bench-cache
MODEL=${BENCH_GRAMMAR_MODEL:-$CACHE/tinyllama-1.1b-q4_0.gguf}
VOCAB=$SH/vocab/ggml-vocab-llama-spm.gguf
THREADS=$(nproc)
SLOTS=8
CTX=4096
CLIENTS=8
MAX_TOKENS=${BENCH_GRAMMAR_MAX_TOKENS:-32}
REPS=${BENCH_GRAMMAR_REPS:-3}
CHECK_MAX_TOKENS=${BENCH_GRAMMAR_CHECK_MAX_TOKENS:-256}
READY_TIMEOUT=${BENCH_GRAMMAR_READY_TIMEOUT:-180}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ ! -x "$SOV" ]; then
    echo "bench_grammar: $SOV not found; run 'make build' first" >&2
    exit 1
fi
if ! command -v node >/dev/null 2>&1; then
    echo "bench_grammar: node not found; skipping the grammar benchmark (scripts/deps.sh installs it)" >&2
    exit 0
fi
if [ "$(node -p 'typeof fetch')" != "function" ]; then
    echo "bench_grammar: node $(node --version) has no global fetch (needs >= 18); skipping the grammar benchmark" >&2
    exit 0
fi
# the model, generated as scripts/bench.sh does when it is missing
if [ ! -f "$MODEL" ]; then
    if [ "$MODEL" != "$CACHE/tinyllama-1.1b-q4_0.gguf" ]; then
        echo "bench_grammar: $MODEL not found" >&2
        exit 1
    fi
    if [ ! -f "$VOCAB" ]; then
        echo "bench_grammar: $MODEL not found and vocabulary $VOCAB not found (set SOV_SHARED)" >&2
        exit 1
    fi
    mkdir -p "$CACHE"
    echo "bench_grammar: generating $MODEL" >&2
    if ! "$SOV" synth tinyllama-1.1b --type q4_0 --vocab "$VOCAB" --seed 1 -o "$MODEL.tmp"; then
        rm -f "$MODEL.tmp"
        echo "bench_grammar: sov synth failed" >&2
        exit 1
    fi
    mv "$MODEL.tmp" "$MODEL"
fi

TMP=$(mktemp -d)
SRV_PID=""
cleanup() {
    if [ -n "$SRV_PID" ] && kill -0 "$SRV_PID" 2>/dev/null; then
        kill -TERM "$SRV_PID" 2>/dev/null || true
        # SIGTERM drains the running requests; give it a while, then insist
        for _ in $(seq 1 100); do
            kill -0 "$SRV_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SRV_PID" 2>/dev/null; then
            echo "bench_grammar: server still running 10 s after SIGTERM; killing it" >&2
            kill -KILL "$SRV_PID" 2>/dev/null || true
        fi
        wait "$SRV_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# other work on the machine skews every number here: say so
cpu_busy() { # percent of all CPUs busy over 2 s, from /proc/stat
    local a b
    read -r -a a < /proc/stat
    sleep 2
    read -r -a b < /proc/stat
    local idle=$(( (b[4] + b[5]) - (a[4] + a[5]) )) tot=0 i
    for i in 1 2 3 4 5 6 7 8; do tot=$(( tot + b[i] - a[i] )); done
    [ "$tot" -gt 0 ] && echo $(( 100 * (tot - idle) / tot )) || echo 0
}
busy=$(cpu_busy)
if [ "$busy" -gt 15 ]; then
    echo "bench_grammar: warning: the CPUs were ${busy} % busy before the run; the numbers will be low and noisy" >&2
fi

# the server, bounded wait for "ready" (start_server ARGS...: sets SRV_PID
# and URL; stop_server: SIGTERM, wait)
LOG=$TMP/serve.log
start_server() {
    "$SOV" serve -m "$MODEL" --port 0 -t "$THREADS" "$@" 2> "$LOG" &
    SRV_PID=$!
    URL=""
    local deadline=$((SECONDS + READY_TIMEOUT))
    while :; do
        if ! kill -0 "$SRV_PID" 2>/dev/null; then
            echo "bench_grammar: sov serve exited before it was ready:" >&2
            cat "$LOG" >&2
            SRV_PID=""
            exit 1
        fi
        [ -z "$URL" ] && URL=$(sed -n 's/.*listening on \(http:\/\/[^ ]*\).*/\1/p' "$LOG" | head -n 1)
        if [ -n "$URL" ] && grep -q 'ready' "$LOG"; then break; fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "bench_grammar: sov serve not ready after ${READY_TIMEOUT} s:" >&2
            cat "$LOG" >&2
            exit 1
        fi
        sleep 0.2
    done
    grep 'ready' "$LOG" | head -n 1 >&2
}
stop_server() {
    kill -TERM "$SRV_PID" 2>/dev/null || true
    wait "$SRV_PID" 2>/dev/null || true
    SRV_PID=""
}
start_server -np "$SLOTS" -c "$CTX" --kv-type f16

# The client runs at the lowest priority: it shares the cores with the
# server, and at normal priority each chunk it parses preempts a compute
# thread.
status=0
nice -n 19 node "$HERE/bench_grammar.mjs" --url "$URL" --clients "$CLIENTS" --max-tokens "$MAX_TOKENS" \
    --reps "$REPS" --check-max-tokens "$CHECK_MAX_TOKENS" --out "$CACHE/bench_grammar.json" --threads "$THREADS" --slots "$SLOTS" --ctx "$CTX" \
    --server-pid "$SRV_PID" || status=$?
if [ "$status" -ne 0 ]; then
    echo "bench_grammar: the client failed (exit $status); server log:" >&2
    tail -n 20 "$LOG" >&2
    exit "$status"
fi
stop_server
