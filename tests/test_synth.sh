#!/usr/bin/env bash
# sov synth end to end on the `tiny` test shape (256 wide, 4 layers, vocab
# 32000): f16 and q4_0 with the shared llama-spm vocab; same seed -> same
# bytes, any thread count -> same bytes, other seed -> other bytes; `sov
# info` describes it; `sov run` works; q4_k_m mix; padding of a vocab smaller
# than the shape's n_vocab (tiny-pad); the built-in vocab; clean errors.
set -u
SOV=${SOV_BIN:-build/sov}
SH=${SOV_SHARED:-../shared}
V=$SH/vocab/ggml-vocab-llama-spm.gguf
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
check() { if [ "$2" -eq 0 ]; then pass "$1"; else fail "$1" "$3"; fi; }
has_count() { grep -Eq "^  $2 +$3 tensors" "$1"; }

if [ ! -x "$SOV" ] || [ ! -f "$V" ]; then
    fail "synth setup" "$SOV or $V is missing (set SOV_SHARED)"
    exit 1
fi

"$SOV" synth --help >"$tmp/help" 2>&1
rc=$?
grep -q 'tinyllama-1.1b' "$tmp/help" && grep -q 'llama3-8b' "$tmp/help" && grep -q 'test shape' "$tmp/help"
check "synth --help lists the shapes" $(( rc != 0 || $? != 0 )) "rc $rc"

# --- f16 and q4_0 with the llama-spm vocab ---
for t in f16 q4_0; do
    "$SOV" synth tiny -o "$tmp/a-$t.gguf" --type $t --vocab "$V" --seed 7 -t 2 2>"$tmp/err"
    rc=$?
    check "synth tiny --type $t" $rc "rc $rc: $(head -c 300 "$tmp/err")"
done
"$SOV" info "$tmp/a-f16.gguf" --meta >"$tmp/info" 2>&1
ok=0
grep -q 'name: *synthetic tiny' "$tmp/info" || ok=1
grep -q 'n_vocab 32000, n_ctx_train 2048, n_embd 256, n_layer 4, n_head 8, n_head_kv 4' "$tmp/info" || ok=1
grep -q 'head_dim 32, n_ff 768' "$tmp/info" || ok=1
grep -q 'separate output.weight' "$tmp/info" || ok=1
grep -q 'tokenizer: *llama (SentencePiece).*32000 tokens, bos 1, eos 2' "$tmp/info" || ok=1
grep -Eq 'sov.synth.seed +7' "$tmp/info" || ok=1
has_count "$tmp/info" f32 9 || ok=1
has_count "$tmp/info" f16 30 || ok=1
check "sov info describes the f16 tiny model" $ok "$(head -c 1200 "$tmp/info")"
"$SOV" info "$tmp/a-q4_0.gguf" --meta >"$tmp/info" 2>&1
has_count "$tmp/info" q4_0 30 && grep -Eq 'general.file_type +2' "$tmp/info"
check "sov info: q4_0 tiny has 30 q4_0 tensors, file_type 2" $? "$(grep -E '^  [a-z]|file_type' "$tmp/info" | tr '\n' ' ')"

for t in f16 q4_0; do
    "$SOV" run -m "$tmp/a-$t.gguf" -p "Hello world" -n 8 --temp 0 --ignore-eos --print-ids >"$tmp/ids" 2>"$tmp/err"
    rc=$?
    n=$(wc -w <"$tmp/ids")
    # BOS + "Hello world" (2 ids, as llama-2) + 8 generated
    check "sov run -n 8 on the $t tiny model" $(( rc != 0 || n != 11 )) "rc $rc, ids: $(cat "$tmp/ids") $(head -c 200 "$tmp/err")"
    head -c 16 "$tmp/ids" | grep -q '^1 15043 3186 '
    check "the $t tiny model tokenizes like llama-2" $? "$(head -c 60 "$tmp/ids")"
done

# --- determinism ---
"$SOV" synth tiny -o "$tmp/b.gguf" --type q4_0 --vocab "$V" --seed 7 -t 1 -q
cmp -s "$tmp/a-q4_0.gguf" "$tmp/b.gguf"
check "same seed, 1 vs 2 threads: identical q4_0 files" $? "files differ"
"$SOV" synth tiny -o "$tmp/c.gguf" --type q4_0 --vocab "$V" --seed 7 -t 3 -q
cmp -s "$tmp/a-q4_0.gguf" "$tmp/c.gguf"
check "same seed, 3 threads: identical q4_0 file" $? "files differ"
"$SOV" synth tiny -o "$tmp/d.gguf" --type f16 --vocab "$V" --seed 7 -t 1 -q
cmp -s "$tmp/a-f16.gguf" "$tmp/d.gguf"
check "same seed, 1 vs 2 threads: identical f16 files" $? "files differ"
"$SOV" synth tiny -o "$tmp/e.gguf" --type q4_0 --vocab "$V" --seed 8 -q
sz_a=$(stat -c %s "$tmp/a-q4_0.gguf"); sz_e=$(stat -c %s "$tmp/e.gguf")
diffs=$(cmp -l "$tmp/a-q4_0.gguf" "$tmp/e.gguf" 2>/dev/null | wc -l)
# same layout (size), but the weights differ almost everywhere
check "another seed gives other weights" $(( sz_a != sz_e || diffs < sz_a / 2 )) \
    "sizes $sz_a/$sz_e, $diffs bytes differ"

# --- q4_k_m mix: q6_k on output and attn_v/ffn_down of layers 2, 3 (n = 4) ---
"$SOV" synth tiny -o "$tmp/k.gguf" --type q4_k_m --vocab "$V" -q
"$SOV" info "$tmp/k.gguf" >"$tmp/info" 2>&1
has_count "$tmp/info" q4_k 25 && has_count "$tmp/info" q6_k 5
check "synth tiny q4_k_m: 25 q4_k + 5 q6_k" $? "$(grep -E '^  [a-z]' "$tmp/info" | tr '\n' ' ')"
"$SOV" run -m "$tmp/k.gguf" -n 8 --temp 0 --ignore-eos >/dev/null 2>"$tmp/err"
check "sov run on the q4_k_m tiny model" $? "$(head -c 200 "$tmp/err")"

# --- vocab padding: tiny-pad has n_vocab 32064 ---
"$SOV" synth tiny-pad -o "$tmp/p.gguf" --vocab "$V" 2>"$tmp/err"
rc=$?
grep -q 'padded with 64 control tokens' "$tmp/err"
check "synth tiny-pad says it pads 64 tokens" $(( rc != 0 || $? != 0 )) "rc $rc: $(head -c 300 "$tmp/err")"
"$SOV" info "$tmp/p.gguf" >"$tmp/info" 2>&1
grep -q 'n_vocab 32064' "$tmp/info" && grep -q '32064 tokens' "$tmp/info"
check "padded model: 32064 tokens" $? "$(grep -E 'vocab|tokens' "$tmp/info" | head -3)"
# the pad tokens are control tokens: with special parsing, the text is one token
"$SOV" tokenize -m "$tmp/p.gguf" -p '<|synth_pad_63|>' --no-bos >"$tmp/tok" 2>&1
grep -qw 32063 "$tmp/tok"
check "pad token <|synth_pad_63|> has id 32063" $? "$(head -c 200 "$tmp/tok")"
"$SOV" run -m "$tmp/p.gguf" -n 8 --temp 0 --ignore-eos >/dev/null 2>"$tmp/err"
check "sov run on the padded model" $? "$(head -c 200 "$tmp/err")"

# --- built-in vocab (no --vocab) ---
"$SOV" synth tiny -o "$tmp/n.gguf" --type q8_0 2>"$tmp/err"
rc=$?
grep -q 'built-in byte vocab' "$tmp/err"
check "synth without --vocab uses the built-in byte vocab" $(( rc != 0 || $? != 0 )) "rc $rc $(head -c 200 "$tmp/err")"
"$SOV" run -m "$tmp/n.gguf" -p "Hi" -n 4 --temp 0 --ignore-eos --print-ids >"$tmp/ids" 2>"$tmp/err"
# BOS, "▁Hi" as bytes: E2 96 81 48 69 -> <0xE2>=229 ... (byte b has id b + 3)
head -c 24 "$tmp/ids" | grep -q '^1 229 153 132 75 108 '
check "built-in vocab: byte-fallback tokens, run works" $? "$(cat "$tmp/ids") $(head -c 200 "$tmp/err")"

# --- errors ---
"$SOV" synth nosuch -o "$tmp/x.gguf" >/dev/null 2>"$tmp/err"
rc=$?; check "unknown shape exits 2" $(( rc != 2 || ! $(grep -c 'unknown shape' "$tmp/err") )) "rc $rc"
"$SOV" synth tiny -o "$tmp/x.gguf" --type q9_9 >/dev/null 2>&1
rc=$?; check "unknown --type exits 2" $(( rc != 2 )) "rc $rc"
"$SOV" synth tiny >/dev/null 2>&1
rc=$?; check "missing -o exits 2" $(( rc != 2 )) "rc $rc"
"$SOV" synth tiny -o "$tmp/x.gguf" --vocab "$SH/vocab/ggml-vocab-gpt-2.gguf" >/dev/null 2>"$tmp/err"
rc=$?
check "a vocab larger than n_vocab is an error" $(( rc != 1 || ! $(grep -c '50257 tokens' "$tmp/err") )) \
    "rc $rc $(head -c 200 "$tmp/err")"
"$SOV" synth tiny -o "$tmp/x.gguf" --vocab "$tmp/none.gguf" >/dev/null 2>&1
rc=$?; check "a missing vocab file is an error" $(( rc != 1 )) "rc $rc"
[ ! -e "$tmp/x.gguf" ] && [ ! -e "$tmp/x.gguf.tmp" ]
check "failed synth leaves no output" $? "$(ls "$tmp")"
