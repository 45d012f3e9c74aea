#!/usr/bin/env bash
# End-to-end tests of the sov binary: exact greedy text (stories260K, with
# and without a prompt), llama-2-tiny-random, info, tokenize, and clean
# errors for bad input. Prints PASS/FAIL lines for tests/run.sh.
set -u
SOV=${SOV_BIN:-build/sov}
SH=${SOV_SHARED:-../shared}
M=$SH/models
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
# expected text of an expected-greedy file: after the '---' line, minus the final newline
expected_text() { sed '1,/^---$/d' "$1" | head -c -1; }

# 1. stories260K greedy from BOS: exact text
"$SOV" run -m "$M/stories260K.gguf" --temp 0 -n 200 --ignore-eos >"$tmp/out.txt" 2>"$tmp/err.txt"
rc=$?
expected_text "$M/stories260K.expected-greedy.txt" >"$tmp/exp.txt"
if [ $rc -eq 0 ] && cmp -s "$tmp/out.txt" "$tmp/exp.txt"; then pass "run stories260K greedy from BOS: exact text"
else fail "run stories260K greedy from BOS: exact text" "rc $rc; $(diff <(cat "$tmp/exp.txt"; echo) <(cat "$tmp/out.txt"; echo) | head -5 | tr '\n' '|')"; fi
grep -q "tok/s" "$tmp/err.txt" && pass "run prints speed on stderr" || fail "run prints speed on stderr" "$(head -c 200 "$tmp/err.txt")"

# 1b. --mmap (the weights mapped instead of read into memory): the same text
"$SOV" run -m "$M/stories260K.gguf" --temp 0 -n 200 --ignore-eos --mmap >"$tmp/out_mm.txt" 2>"$tmp/err.txt"
rc=$?
if [ $rc -eq 0 ] && cmp -s "$tmp/out_mm.txt" "$tmp/exp.txt"; then pass "run --mmap stories260K: exact text"
else fail "run --mmap stories260K: exact text" "rc $rc; $(head -c 200 "$tmp/err.txt")"; fi

# 2. with a prompt: stdout is only the continuation; prompt + output = expected text
"$SOV" run -m "$M/stories260K.gguf" -p "Once upon a time" --temp 0 -n 200 --ignore-eos >"$tmp/out.txt" 2>"$tmp/err.txt"
rc=$?
{ printf 'Once upon a time'; cat "$tmp/out.txt"; } >"$tmp/full.txt"
expected_text "$M/stories260K.expected-greedy-prompt.txt" >"$tmp/exp.txt"
if [ $rc -eq 0 ] && cmp -s "$tmp/full.txt" "$tmp/exp.txt"; then pass "run stories260K prompted: exact text"
else fail "run stories260K prompted: exact text" "rc $rc; $(head -c 200 "$tmp/err.txt")"; fi

# 3. --print-ids gives the expected id line (prompt encoding included)
"$SOV" run -m "$M/stories260K.gguf" -p "Once upon a time" --temp 0 -n 200 --ignore-eos --print-ids >"$tmp/ids.txt" 2>/dev/null
if [ "$(cat "$tmp/ids.txt")" = "$(head -n 1 "$M/stories260K.expected-greedy-prompt.txt")" ]; then pass "run --print-ids stories260K prompted"
else fail "run --print-ids stories260K prompted" "$(head -c 120 "$tmp/ids.txt")"; fi

# 4. llama-2-tiny-random: 32k SPM vocab + F16 weights, exact ids, 50 tokens without error
"$SOV" run -m "$M/llama-2-tiny-random.gguf" -p "Hello world" --temp 0 -n 32 --ignore-eos --print-ids >"$tmp/ids.txt" 2>"$tmp/err.txt"
if [ "$(cat "$tmp/ids.txt")" = "$(head -n 1 "$M/llama-2-tiny-random.expected-greedy-prompt.txt")" ]; then pass "run llama-2-tiny-random greedy ids exact"
else fail "run llama-2-tiny-random greedy ids exact" "$(head -c 200 "$tmp/ids.txt") $(head -c 200 "$tmp/err.txt")"; fi
"$SOV" run -m "$M/llama-2-tiny-random.gguf" -n 50 --ignore-eos --seed 7 -t 2 >"$tmp/out.txt" 2>"$tmp/err.txt"
rc=$?
if [ $rc -eq 0 ] && grep -q "generation: 50 tokens" "$tmp/err.txt"; then pass "run llama-2-tiny-random 50 sampled tokens"
else fail "run llama-2-tiny-random 50 sampled tokens" "rc $rc $(head -c 300 "$tmp/err.txt")"; fi

# 5. sampling is reproducible with --seed and differs across seeds
a=$("$SOV" run -m "$M/stories260K.gguf" -n 60 --seed 42 --temp 1.0 2>/dev/null)
b=$("$SOV" run -m "$M/stories260K.gguf" -n 60 --seed 42 --temp 1.0 -t 1 2>/dev/null)
c=$("$SOV" run -m "$M/stories260K.gguf" -n 60 --seed 43 --temp 1.0 2>/dev/null)
[ -n "$a" ] && [ "$a" = "$b" ] && pass "same seed, same text" || fail "same seed, same text" "differs"
[ "$a" != "$c" ] && pass "different seed, different text" || fail "different seed, different text" "identical"

# 5b. --kv-type: the cache type named on stderr (f32 by default); f16 and q8_0
# give the same ids at 1 and 2 threads; stories260K's first 100 greedy tokens
# from BOS are f32's with f16 (tests/test_forward.c measures the agreement)
"$SOV" run -m "$M/stories260K.gguf" --temp 0 -n 8 2>"$tmp/err.txt" >/dev/null
grep -q "| kv f32$" "$tmp/err.txt" && pass "run: kv f32 by default" || fail "run: kv f32 by default" "$(cat "$tmp/err.txt")"
for kv in f16 q8_0; do
    a=$("$SOV" run -m "$M/stories260K.gguf" --temp 0 -n 100 --ignore-eos --print-ids --kv-type $kv -t 1 2>"$tmp/err.txt")
    b=$("$SOV" run -m "$M/stories260K.gguf" --temp 0 -n 100 --ignore-eos --print-ids --kv-type $kv -t 2 2>/dev/null)
    if [ -n "$a" ] && [ "$a" = "$b" ] && grep -q "| kv $kv$" "$tmp/err.txt"; then pass "run --kv-type $kv: 1 and 2 threads identical"
    else fail "run --kv-type $kv: 1 and 2 threads identical" "$(head -c 200 "$tmp/err.txt")"; fi
done
c=$("$SOV" run -m "$M/stories260K.gguf" --temp 0 -n 100 --ignore-eos --print-ids 2>/dev/null)
a=$("$SOV" run -m "$M/stories260K.gguf" --temp 0 -n 100 --ignore-eos --print-ids --kv-type f16 2>/dev/null)
[ -n "$a" ] && [ "$a" = "$c" ] && pass "run --kv-type f16: stories260K greedy = f32's for 100 tokens" \
    || fail "run --kv-type f16: stories260K greedy = f32's for 100 tokens" "$a"

# 6. info describes the model
"$SOV" info "$M/llama-2-tiny-random.gguf" --ctx 256 >"$tmp/info.txt" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q "architecture: *llama" "$tmp/info.txt" && grep -q "32000 tokens" "$tmp/info.txt" \
   && grep -q "f16" "$tmp/info.txt" && grep -q "KV cache" "$tmp/info.txt"; then pass "info llama-2-tiny-random"
else fail "info llama-2-tiny-random" "rc $rc $(head -c 300 "$tmp/info.txt")"; fi
# KV cache for stories260K at ctx 512: 2 * 5 layers * 512 * (4 kv heads * 8 dims) * 4 bytes = 0.62 MiB
"$SOV" info "$M/stories260K.gguf" --ctx 512 >"$tmp/info.txt" 2>&1
grep -q "KV cache 0.62 MiB" "$tmp/info.txt" && pass "info KV estimate" || fail "info KV estimate" "$(grep memory "$tmp/info.txt")"
grep -q "KV by type: *per position f32 1.25 KiB, f16 0.62 KiB, q8_0 0.39 KiB; ctx 512: f32 0.62 MiB, f16 0.31 MiB, q8_0 0.20 MiB" "$tmp/info.txt" \
    && pass "info KV by type" || fail "info KV by type" "$(grep "KV by" "$tmp/info.txt")"
# a serving configuration (stories260K: 5 layers x 4 KV heads x 8; q8_0 = 32
# int8 + 32 f16 scales per block and head row: 2 x 5 x (4 x 8 x 32 + 4 x 32 x 2)
# = 12,800 bytes per block, 400 per position = 0.625 of f16's 640)
"$SOV" info "$M/stories260K.gguf" -np 4 -c 1024 --kv-type q8_0 >"$tmp/info.txt" 2>&1
grep -q "^serving: *sov serve -np 4 -c 1024 --kv-type q8_0: 4 slots of up to 256 positions" "$tmp/info.txt" \
    && grep -q "^  KV pool: *32 blocks x 32 positions (every slot its whole context) x 12.50 KiB = 0.39 MiB: 4 whole contexts" "$tmp/info.txt" \
    && grep -q "^  per position: 0.39 KiB q8_0 = 0.625x llama.cpp's f16 cache (2 x 5 layers x 4 KV heads x 8 x 2 bytes = 0.62 KiB)" "$tmp/info.txt" \
    && grep -q "^  total: *weights 1.12 MiB + KV 0.39 MiB + compute [0-9.]* MiB = [0-9.]* MiB" "$tmp/info.txt" \
    && pass "info -np -c --kv-type: slots, KV pool, bytes per position against llama.cpp f16, total" \
    || fail "info -np -c --kv-type: slots, KV pool, bytes per position against llama.cpp f16, total" "$(tail -n 7 "$tmp/info.txt")"
# --kv-mem in whole blocks: 0.001 GiB / 20,480 bytes (f16) = 52 blocks, short of one 2,048-position context
"$SOV" info "$M/stories260K.gguf" --kv-mem 0.001 >"$tmp/info.txt" 2>&1
grep -q "^serving: *a KV pool of 1664 positions cannot hold one context of 2048: sov serve refuses it" "$tmp/info.txt" \
    && pass "info --kv-mem: a pool short of one context is refused" \
    || fail "info --kv-mem: a pool short of one context is refused" "$(tail -n 2 "$tmp/info.txt")"

# 7. tokenize
out=$("$SOV" tokenize -m "$M/llama-2-tiny-random.gguf" -p "Hello world" 2>&1)
[ "$out" = "1 15043 3186" ] && pass "tokenize Hello world" || fail "tokenize Hello world" "$out"
out=$("$SOV" tokenize -m "$M/stories260K.gguf" -p "Once upon a time" 2>&1)
[ "$out" = "1 403 407 261 378" ] && pass "tokenize Once upon a time" || fail "tokenize Once upon a time" "$out"

# 8. bad input: clean errors, right exit codes, never a crash
expect_err() { # name expected_rc pattern cmd...
    local name=$1 erc=$2 pat=$3; shift 3
    "$@" >"$tmp/o" 2>"$tmp/e"; local rc=$?
    if [ $rc -eq "$erc" ] && grep -q -- "$pat" "$tmp/e"; then pass "$name"
    else fail "$name" "rc $rc, stderr: $(head -c 200 "$tmp/e")"; fi
}
expect_err "missing model file" 1 "cannot open" "$SOV" run -m "$tmp/nope.gguf" -n 1
head -c 1000 "$M/stories260K.gguf" >"$tmp/trunc.gguf"
expect_err "truncated model" 1 "truncated\|past\|exceeds\|impossible" "$SOV" run -m "$tmp/trunc.gguf" -n 1
printf 'not a gguf at all' >"$tmp/junk.gguf"
expect_err "not a gguf" 1 "not a GGUF file" "$SOV" info "$tmp/junk.gguf"
expect_err "unknown option" 2 "unknown option" "$SOV" run -m "$M/stories260K.gguf" --bogus
expect_err "bad number" 2 "not a number" "$SOV" run -m "$M/stories260K.gguf" --temp abc
expect_err "unknown KV type" 2 "is not a KV type" "$SOV" run -m "$M/stories260K.gguf" --kv-type q4
expect_err "missing -m" 2 "required" "$SOV" run -n 5
expect_err "info: unknown KV type" 2 "is not a KV type" "$SOV" info "$M/stories260K.gguf" --kv-type q4
expect_err "unknown command" 2 "unknown command" "$SOV" frobnicate
expect_err "prompt longer than context" 1 "does not fit" "$SOV" run -m "$M/stories260K.gguf" -p "Once upon a time there was" --ctx 4
"$SOV" run -m "$M/stories260K.gguf" --temp 0 -n 100 --ctx 16 >"$tmp/o" 2>"$tmp/e"
rc=$?
[ $rc -eq 0 ] && grep -q "context of 16 tokens is full" "$tmp/e" && pass "context full stops cleanly" || fail "context full stops cleanly" "rc $rc $(cat "$tmp/e")"
# grammar-constrained sov run: a GBNF file, a JSON Schema file and an inline
# schema; the output follows them (checked with python's json module, not sov)
printf 'root ::= ("yes" | "no") "!"\n' >"$tmp/yn.gbnf"
ok=1
for seed in 1 2 3 4 5; do
    out=$("$SOV" run -m "$M/stories260K.gguf" -p "Once" --temp 1 -s $seed --grammar "$tmp/yn.gbnf" 2>"$tmp/e")
    case "$out" in "yes!"|"no!") ;; *) ok=0; why="seed $seed: '$out' $(head -c 200 "$tmp/e")";; esac
done
[ $ok -eq 1 ] && pass "run --grammar: 5 seeds, each yes! or no!" || fail "run --grammar: 5 seeds, each yes! or no!" "$why"
cat >"$tmp/person.json" <<'EOF2'
{"type":"object","properties":{"name":{"type":"string","maxLength":16},"age":{"type":"integer","minimum":0,"maximum":120},
 "pets":{"type":"array","items":{"enum":["cat","dog"]},"maxItems":3}},"required":["name","age","pets"],"additionalProperties":false}
EOF2
ok=1
for seed in 1 2 3 4 5 6 7 8; do
    "$SOV" run -m "$M/stories260K.gguf" -p "Once" --temp 1 -s $seed --json-schema "$tmp/person.json" >"$tmp/o.json" 2>"$tmp/e"
    python3 - "$tmp/o.json" <<'EOF2' || { ok=0; why="seed $seed: $(head -c 200 "$tmp/o.json") $(head -c 200 "$tmp/e")"; }
import json, sys
v = json.load(open(sys.argv[1]))
assert set(v) == {"name", "age", "pets"}, v
assert isinstance(v["name"], str) and len(v["name"]) <= 16
assert isinstance(v["age"], int) and 0 <= v["age"] <= 120
assert isinstance(v["pets"], list) and len(v["pets"]) <= 3 and all(p in ("cat", "dog") for p in v["pets"])
EOF2
done
[ $ok -eq 1 ] && pass "run --json-schema FILE: 8 seeds parse and match the schema" || fail "run --json-schema FILE: 8 seeds parse and match the schema" "$why"
out=$("$SOV" run -m "$M/stories260K.gguf" -p "Once" --temp 0 --json-schema '{"type":"boolean"}' 2>"$tmp/e")
case "$out" in true|false) pass "run --json-schema inline: a boolean" ;; *) fail "run --json-schema inline: a boolean" "'$out' $(head -c 200 "$tmp/e")" ;; esac
expect_err "run --json-schema: unsupported keyword named" 1 "patternProperties" "$SOV" run -m "$M/stories260K.gguf" --json-schema '{"type":"object","patternProperties":{"a":{}}}'
printf 'root ::= "a" undefined-rule\n' >"$tmp/bad.gbnf"
expect_err "run --grammar: undefined rule with its position" 1 "bad.gbnf.*1:" "$SOV" run -m "$M/stories260K.gguf" --grammar "$tmp/bad.gbnf"
expect_err "run --grammar and --json-schema together" 2 "not both" "$SOV" run -m "$M/stories260K.gguf" --grammar "$tmp/yn.gbnf" --json-schema '{}'
exit 0
