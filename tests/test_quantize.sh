#!/usr/bin/env bash
# sov quantize end to end: stories260K (f32, 64-wide rows: fallbacks) and
# mini256-f16 (256-wide) to q8_0, q4_0 and q4_k_m; `sov info` per-type tensor
# counts; `sov run` on the results; requantizing a quantized file; thread
# count invariance; clean errors (bad type, bad input) that leave no output.
# The numeric quality checks are in test_quant.c.
set -u
SOV=${SOV_BIN:-build/sov}
SH=${SOV_SHARED:-../shared}
M=$SH/models
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
check() { # name, condition exit status, why
    if [ "$2" -eq 0 ]; then pass "$1"; else fail "$1" "$3"; fi
}
# has_count INFO_FILE TYPE N: `sov info` lists N tensors of TYPE
has_count() { grep -Eq "^  $2 +$3 tensors" "$1"; }

if [ ! -x "$SOV" ] || [ ! -f "$M/stories260K.gguf" ] || [ ! -f "$M/quant/mini256-f16.gguf" ]; then
    fail "quantize setup" "$SOV or the shared models are missing (set SOV_SHARED)"
    exit 1
fi

# --- command line ---
"$SOV" quantize --help >"$tmp/help" 2>&1
rc=$?; grep -q 'q4_k_m' "$tmp/help"
check "quantize --help lists the types" $(( rc != 0 || $? != 0 )) "rc $rc"
"$SOV" quantize >/dev/null 2>&1
rc=$?; check "quantize without arguments exits 2" $(( rc != 2 )) "rc $rc"
"$SOV" quantize "$M/stories260K.gguf" "$tmp/bad.gguf" q3_x >/dev/null 2>"$tmp/err"
rc=$?
check "quantize unknown type exits 2 with a message" $(( rc != 2 || ! $(grep -c "unknown type 'q3_x'" "$tmp/err") )) \
    "rc $rc, $(head -c 200 "$tmp/err")"
"$SOV" quantize "$tmp/none.gguf" "$tmp/bad.gguf" q8_0 >/dev/null 2>"$tmp/err"
rc=$?
check "quantize missing input exits 1 with a message" $(( rc != 1 || ! $(grep -c 'none.gguf' "$tmp/err") )) \
    "rc $rc, $(head -c 200 "$tmp/err")"
head -c 5000 "$M/stories260K.gguf" >"$tmp/trunc.gguf"
"$SOV" quantize "$tmp/trunc.gguf" "$tmp/bad.gguf" q8_0 >/dev/null 2>"$tmp/err"
rc=$?
check "quantize truncated input exits 1" $(( rc != 1 )) "rc $rc, $(head -c 200 "$tmp/err")"
left=$(ls "$tmp" | grep -c '^bad\.gguf')
check "failed quantize leaves no output (nor .tmp)" "$left" "$(ls "$tmp")"

# --- stories260K: 64-wide rows, ffn_down 172-wide ---
S=$M/stories260K.gguf
# type n_f32 n_main main_type extra...
for spec in "q8_0 11 32 q8_0 f16:5" "q4_0 11 32 q4_0 f16:5" "q4_k_m 11 29 q5_0 q8_0:3 f16:5"; do
    set -- $spec
    t=$1
    "$SOV" quantize "$S" "$tmp/s-$t.gguf" "$t" -t 2 >/dev/null 2>"$tmp/qerr"
    rc=$?
    "$SOV" info "$tmp/s-$t.gguf" >"$tmp/info" 2>&1
    ok=$(( rc != 0 ))
    has_count "$tmp/info" f32 "$2" || ok=1
    has_count "$tmp/info" "$4" "$3" || ok=1
    for extra in "${@:5}"; do has_count "$tmp/info" "${extra%%:*}" "${extra##*:}" || ok=1; done
    check "quantize stories260K $t: tensor types ($2 f32, $3 $4 ${*:5})" $ok \
        "rc $rc $(head -c 300 "$tmp/qerr") | $(grep -E '^  [a-z]' "$tmp/info" | tr '\n' ' ')"
    grep -q 'are not a multiple of the' "$tmp/qerr"
    check "quantize stories260K $t reports the fallbacks" $? "$(head -c 200 "$tmp/qerr")"
    "$SOV" run -m "$tmp/s-$t.gguf" --temp 0 -n 40 >"$tmp/out" 2>"$tmp/rerr"
    rc=$?
    grep -q '^Once upon a time' "$tmp/out"
    check "run stories260K $t: greedy text starts like the f32 model" $(( rc != 0 || $? != 0 )) \
        "rc $rc, out: $(head -c 100 "$tmp/out") $(head -c 200 "$tmp/rerr")"
done
grep -q 'general.file_type *15' <("$SOV" info "$tmp/s-q4_k_m.gguf" --meta)
check "q4_k_m sets general.file_type 15" $? "$("$SOV" info "$tmp/s-q4_k_m.gguf" --meta | grep file_type)"

# --- mini256-f16: 256-wide rows, no fallbacks ---
F=$M/quant/mini256-f16.gguf
for spec in "q8_0 9 30 q8_0" "q4_0 9 30 q4_0" "q4_k_m 9 25 q4_k q6_k:5" "q5_k_m 9 25 q5_k q6_k:5" "bf16 9 30 bf16"; do
    set -- $spec
    t=$1
    "$SOV" quantize "$F" "$tmp/m-$t.gguf" "$t" >/dev/null 2>"$tmp/qerr"
    rc=$?
    "$SOV" info "$tmp/m-$t.gguf" >"$tmp/info" 2>&1
    ok=$(( rc != 0 ))
    has_count "$tmp/info" f32 "$2" || ok=1
    has_count "$tmp/info" "$4" "$3" || ok=1
    for extra in "${@:5}"; do has_count "$tmp/info" "${extra%%:*}" "${extra##*:}" || ok=1; done
    check "quantize mini256-f16 $t: tensor types ($2 f32, $3 $4 ${*:5})" $ok \
        "rc $rc $(head -c 300 "$tmp/qerr") | $(grep -E '^  [a-z]' "$tmp/info" | tr '\n' ' ')"
    ! grep -q 'not a multiple' "$tmp/qerr"
    check "quantize mini256-f16 $t: no fallbacks" $? "$(head -c 200 "$tmp/qerr")"
    "$SOV" run -m "$tmp/m-$t.gguf" --temp 0 -n 16 --ignore-eos >"$tmp/out" 2>"$tmp/rerr"
    rc=$?
    check "run mini256 $t produces text" $(( rc != 0 || $(wc -c <"$tmp/out") == 0 )) \
        "rc $rc, $(head -c 200 "$tmp/rerr")"
done

# thread count does not change the bytes
"$SOV" quantize "$F" "$tmp/t1.gguf" q4_k_m -t 1 -q && "$SOV" quantize "$F" "$tmp/t3.gguf" q4_k_m -t 3 -q
cmp -s "$tmp/t1.gguf" "$tmp/t3.gguf"
check "quantize -t 1 and -t 3 give identical files" $? "files differ"
cmp -s "$tmp/t1.gguf" "$tmp/m-q4_k_m.gguf"
check "quantize default threads gives the same file" $? "files differ"

# requantizing: q4_k_m -> q8_0 (dequantized first), q8_0 -> q8_0 copies tensors
"$SOV" quantize "$M/quant/mini256-q4_k_m.gguf" "$tmp/rq.gguf" q8_0 >/dev/null 2>"$tmp/qerr"
rc=$?
"$SOV" info "$tmp/rq.gguf" >"$tmp/info" 2>&1
has_count "$tmp/info" q8_0 30
check "requantize mini256-q4_k_m to q8_0" $(( rc != 0 || $? != 0 )) "rc $rc $(head -c 200 "$tmp/qerr")"
"$SOV" run -m "$tmp/rq.gguf" --temp 0 -n 8 --ignore-eos >/dev/null 2>&1
check "run the requantized model" $? "run failed"
"$SOV" quantize "$M/quant/mini256-q8_0.gguf" "$tmp/same.gguf" q8_0 >/dev/null 2>"$tmp/qerr"
grep -q '39 copied unchanged' "$tmp/qerr"
check "quantize q8_0 -> q8_0 copies every tensor unchanged" $? "$(head -c 300 "$tmp/qerr")"

# an existing output is replaced only on success
echo previous >"$tmp/keep.gguf"
"$SOV" quantize "$tmp/trunc.gguf" "$tmp/keep.gguf" q8_0 >/dev/null 2>&1
[ "$(cat "$tmp/keep.gguf")" = previous ] && [ ! -e "$tmp/keep.gguf.tmp" ]
check "failed quantize keeps an existing output file" $? "$(head -c 50 "$tmp/keep.gguf")"
