#!/usr/bin/env bash
# Builds the libFuzzer target tests/fuzz/fuzz_gguf.c with clang
# (-fsanitize=fuzzer,address,undefined) and fuzzes the GGUF / model /
# tokenizer loaders for SECONDS (default 60), seeded with copies of the
# shared GGUF files. Not part of `make test`.
#
#   tests/fuzz/run.sh [SECONDS]          fuzz (exit status 1 if it found a crash)
#   tests/fuzz/run.sh --replay FILE...   run the target once on each FILE
#
# Environment: SOV_SHARED (shared data, default ../shared), FUZZ_BUILD
# (build dir, default build-fuzz), FUZZ_JOBS (parallel fuzzing processes,
# default 1), FUZZ_ARGS (extra libFuzzer flags), CLANG (compiler, default clang).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
CLANG=${CLANG:-clang}
BUILD=${FUZZ_BUILD:-build-fuzz}
SHARED=${SOV_SHARED:-$root/../shared}
JOBS=${FUZZ_JOBS:-1}

install_hint() {
    local major
    major=$("$CLANG" --version 2>/dev/null | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -1)
    echo "fuzz: $1" >&2
    echo "fuzz: libFuzzer ships with clang's runtime libraries. On Debian/Ubuntu:" >&2
    echo "        apt-get install clang libclang-rt-${major:-14}-dev" >&2
    echo "      (check with: apt-cache policy libclang-rt-${major:-14}-dev; the runtime is" >&2
    echo "       libclang_rt.fuzzer-x86_64.a under \$(clang -print-resource-dir)/lib/linux)" >&2
    exit 2
}

command -v "$CLANG" >/dev/null 2>&1 || install_hint "'$CLANG' not found"
mkdir -p "$BUILD"
probe="$BUILD/probe.c"
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' >"$probe"
if ! "$CLANG" -fsanitize=fuzzer,address,undefined "$probe" -o "$BUILD/probe" 2>"$BUILD/probe.log"; then
    cat "$BUILD/probe.log" >&2
    install_hint "'$CLANG -fsanitize=fuzzer' does not link here"
fi

# Build: every library source (not src/cli) plus the target, incrementally.
CFLAGS="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g -O1 -fno-omit-frame-pointer -pthread"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"
objs=()
while IFS= read -r src; do
    obj="$BUILD/obj/${src%.c}.o"
    objs+=("$obj")
    if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find src -name '*.h' -newer "$obj" -print -quit)" ]; then
        mkdir -p "$(dirname "$obj")"
        # the SIMD kernel files get their instruction sets, as in the Makefile
        case "$src" in
        */kern_avx2.c | */kern_avx2_k.c) arch="-mavx2 -mfma -mf16c" ;;
        */kern_avx512.c | */kern_avx512_k.c)
            arch="-mavx2 -mfma -mf16c -mavx512f -mavx512dq -mavx512bw -mavx512vl -mavx512vnni" ;;
        *) arch="" ;;
        esac
        "$CLANG" $CFLAGS $SAN $arch -fsanitize=fuzzer-no-link -c "$src" -o "$obj"
    fi
done < <(find src -name '*.c' ! -path 'src/cli/*' | sort)
"$CLANG" $CFLAGS $SAN -fsanitize=fuzzer -Isrc -o "$BUILD/fuzz_gguf" tests/fuzz/fuzz_gguf.c "${objs[@]}" \
    -lpcre2-8 -ljansson -lunistring -lm

if [ "${1:-}" = "--replay" ]; then
    shift
    exec "$BUILD/fuzz_gguf" "$@"
fi
SECS=${1:-60}

# Seed corpus: copies of the shared GGUF files (../shared is never written).
work=$(mktemp -d "${TMPDIR:-/tmp}/sov-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$BUILD/artifacts"
n=0
for f in "$SHARED"/models/*.gguf "$SHARED"/models/quant/mini256-q4_0.gguf "$SHARED"/models/quant/mini256-q4_k_m.gguf \
         "$SHARED"/models/quant/mini256-q8_0.gguf "$SHARED"/vocab/*.gguf; do
    [ -f "$f" ] || continue
    cp "$f" "$work/corpus/"
    n=$((n + 1))
done
[ "$n" -gt 0 ] || { echo "fuzz: no GGUF files under $SHARED (set SOV_SHARED)" >&2; exit 2; }

# A dictionary of the format's words helps the mutator build valid records.
cat >"$work/gguf.dict" <<'EOF'
"GGUF"
"\x03\x00\x00\x00"
"\x02\x00\x00\x00"
"general.alignment"
"general.architecture"
"llama"
"gpt2"
"tokenizer.ggml.model"
"tokenizer.ggml.tokens"
"tokenizer.ggml.scores"
"tokenizer.ggml.token_type"
"tokenizer.ggml.merges"
"tokenizer.ggml.pre"
"tokenizer.ggml.bos_token_id"
"tokenizer.ggml.eos_token_id"
"tokenizer.ggml.unknown_token_id"
"tokenizer.ggml.add_bos_token"
"llama.embedding_length"
"llama.block_count"
"llama.attention.head_count"
"llama.attention.head_count_kv"
"llama.attention.key_length"
"llama.rope.dimension_count"
"llama.feed_forward_length"
"llama.rope.scaling.type"
"token_embd.weight"
"output.weight"
"output_norm.weight"
"blk.0.attn_q.weight"
"blk.0.ffn_gate.weight"
"<0x41>"
"\xe2\x96\x81"
"\xff\xff\xff\xff\xff\xff\xff\xff"
"\x00\x00\x00\x80\x00\x00\x00\x00"
"\x00\x00\x00\x00\x01\x00\x00\x00"
EOF

echo "fuzz: $n seed files, ${SECS}s, $JOBS job(s); crashes go to $BUILD/artifacts/"
rc=0
# shellcheck disable=SC2086
"$BUILD/fuzz_gguf" "$work/corpus" -dict="$work/gguf.dict" -max_total_time="$SECS" -timeout=30 \
    -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/" \
    $( [ "$JOBS" -gt 1 ] && echo "-fork=$JOBS" ) ${FUZZ_ARGS:-} || rc=$?
if [ "$rc" -ne 0 ]; then
    echo "fuzz: FOUND A PROBLEM (exit $rc); reproduce with: tests/fuzz/run.sh --replay $BUILD/artifacts/<file>" >&2
    exit 1
fi
echo "fuzz: no crash in ${SECS}s"
