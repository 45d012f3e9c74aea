#!/usr/bin/env bash
# `make bench`: sov bench on synthetic tinyllama-1.1b models in F16, Q8_0,
# Q4_0 and Q4_K_M at 1 and 2 threads (pp512, tg64, 3 repetitions), with the
# memory-bandwidth roofline, then the KV cache part (scripts/bench_kv.sh),
# the serving sweep (scripts/bench_serve.sh), the cost of grammar-constrained
# sampling (scripts/bench_grammar.sh) and the router overhead
# (scripts/bench_router.sh). Missing models are generated once with
# `sov synth` into bench-cache/ (git-ignored); the table goes to stdout and
# the JSON to bench-cache/bench.json. Never part of `make test`.
set -euo pipefail
BUILD=${1:-build}
SOV=$BUILD/sov
SH=${SOV_SHARED:-../shared}
CACHE=bench-cache
VOCAB=$SH/vocab/ggml-vocab-llama-spm.gguf
TYPES=(f16 q8_0 q4_0 q4_k_m)

if [ ! -x "$SOV" ]; then
    echo "bench: $SOV not found; run 'make build' first" >&2
    exit 1
fi
models=()
for t in "${TYPES[@]}"; do models+=("$CACHE/tinyllama-1.1b-$t.gguf"); done
missing=()
for m in "${models[@]}"; do [ -f "$m" ] || missing+=("$m"); done

if [ ${#missing[@]} -gt 0 ]; then
    if ! "$SOV" --help 2>/dev/null | grep -q '^  synth '; then
        echo "bench: missing ${missing[*]}" >&2
        echo "bench: they are generated with 'sov synth', which this build of sov does not have" >&2
        echo "bench: (sov synth is developed on another branch; merge it, or put the models in $CACHE/)" >&2
        exit 1
    fi
    if [ ! -f "$VOCAB" ]; then
        echo "bench: vocabulary $VOCAB not found (set SOV_SHARED to the shared data folder)" >&2
        exit 1
    fi
    mkdir -p "$CACHE"
    for t in "${TYPES[@]}"; do
        out=$CACHE/tinyllama-1.1b-$t.gguf
        [ -f "$out" ] && continue
        echo "bench: generating $out" >&2
        # write to a temporary name so an interrupted run leaves no half file
        if ! "$SOV" synth tinyllama-1.1b --type "$t" --vocab "$VOCAB" --seed 1 -o "$out.tmp"; then
            rm -f "$out.tmp"
            echo "bench: sov synth failed for $t" >&2
            exit 1
        fi
        mv "$out.tmp" "$out"
    done
fi

args=()
for m in "${models[@]}"; do args+=(-m "$m"); done
"$SOV" bench "${args[@]}" -t 1,2 -p 512 -n 64 -r 3 --json-out "$CACHE/bench.json"
echo "bench: JSON written to $CACHE/bench.json" >&2

# KV cache: memory per type and sequences per GiB (from sov serve's pool),
# decode speed of paged f16 against fixed f32 (bench-cache/bench_kv.json)
bash "$(dirname "${BASH_SOURCE[0]}")/bench_kv.sh" "$BUILD"

# serving concurrency sweep: sov serve with 1-16 streaming clients (JSON to
# bench-cache/bench_serve.json)
bash "$(dirname "${BASH_SOURCE[0]}")/bench_serve.sh" "$BUILD"

# grammar-constrained sampling: 8 streams with a nested JSON schema against
# 8 unconstrained, alternating; mask time per token against the step time
# (JSON to bench-cache/bench_grammar.json)
bash "$(dirname "${BASH_SOURCE[0]}")/bench_grammar.sh" "$BUILD"

# router overhead: sov serve --config with an openai backend vs the upstream
# direct (a fake upstream and a stories260K box; JSON to
# bench-cache/bench_router.json)
bash "$(dirname "${BASH_SOURCE[0]}")/bench_router.sh" "$BUILD"
