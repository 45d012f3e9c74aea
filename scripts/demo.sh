#!/usr/bin/env bash
# The main job, end to end: describe a model, generate text with it, then
# serve it over the OpenAI API and ask it twice with curl.
set -euo pipefail
BUILD=${1:-build}
SH=${SOV_SHARED:-../shared}
M=$SH/models/stories260K.gguf
[ -f "$M" ] || { echo "demo: $M not found (set SOV_SHARED to the shared data folder)" >&2; exit 1; }
echo "== sov info $M"
"$BUILD/sov" info "$M"
echo
echo "== sov run -m $M -p 'Once upon a time' -n 150 --temp 0"
printf 'Once upon a time'
"$BUILD/sov" run -m "$M" -p "Once upon a time" -n 150 --temp 0
echo
echo
echo "== sov run (sampled: --temp 0.8 --seed 1)"
"$BUILD/sov" run -m "$M" -n 100 --temp 0.8 --seed 1
echo
echo
echo "== sov serve -m $M --port 0 (OpenAI-compatible), one streamed and one plain completion with curl"
log=$(mktemp)
"$BUILD/sov" serve -m "$M" --port 0 --chat-template llama2 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
url=""
for _ in $(seq 1 100); do
    url=$(sed -n 's/.*listening on \(http:\/\/[^ ]*\).*/\1/p' "$log")
    [ -n "$url" ] && grep -q ready "$log" && break
    sleep 0.1
done
[ -n "$url" ] || { cat "$log" >&2; exit 1; }
head -n 2 "$log"
echo "-- POST $url/v1/chat/completions (stream)"
curl -sN "$url/v1/chat/completions" -H 'Content-Type: application/json' \
    -d '{"model":"stories260K","messages":[{"role":"user","content":"Tell me a story"}],"max_tokens":6,"seed":1,"stream":true}' |
    grep -v '^$'
echo "-- POST $url/v1/completions"
curl -s "$url/v1/completions" -H 'Content-Type: application/json' \
    -d '{"model":"stories260K","prompt":"Once upon a time","max_tokens":40,"temperature":0}'
echo
kill -TERM "$pid"
wait "$pid"
tail -n 1 "$log"
