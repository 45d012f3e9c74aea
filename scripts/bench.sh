#!/usr/bin/env bash
# Decode speed of `sov run` on the shared models at 1 and 2 threads
# (tokens/s as printed by sov run on stderr). Not part of `make test`.
set -uo pipefail
BUILD=${1:-build}
SH=${SOV_SHARED:-../shared}
models=("$SH/models/stories260K.gguf" "$SH/models/llama-2-tiny-random.gguf")
for q in f16 q8_0 q4_0 q4_k_m q6_k; do models+=("$SH/models/quant/mini256-$q.gguf"); done
printf '%-28s %7s %14s %14s\n' model threads "prompt tok/s" "gen tok/s"
for m in "${models[@]}"; do
    [ -f "$m" ] || continue
    for t in 1 2; do
        line=$("$BUILD/sov" run -m "$m" -p "Once upon a time there was a little dog" -n 128 --ignore-eos \
               --temp 0 -t "$t" 2>&1 >/dev/null | grep 'tok/s' | tail -n 1)
        pp=$(sed -n 's/.*prompt: [0-9]* tokens, [0-9.]* ms, \([0-9.]*\) tok\/s.*/\1/p' <<<"$line")
        tg=$(sed -n 's/.*generation: [0-9]* tokens, [0-9.]* ms, \([0-9.]*\) tok\/s.*/\1/p' <<<"$line")
        printf '%-28s %7s %14s %14s\n' "$(basename "$m")" "$t" "${pp:-error}" "${tg:-error}"
    done
done
