#!/usr/bin/env bash
# End-to-end tests of `sov plan`: the tables, --json, --check verdicts and
# exit statuses, --report, a GGUF model profile, `this` without a
# calibration, and clean errors. Prints PASS/FAIL lines for tests/run.sh.
set -u
SOV=${SOV_BIN:-build/sov}
SH=${SOV_SHARED:-../shared}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# no calibration of this machine unless a test makes one
export SOV_PLAN_CALIB="$tmp/none/calibration.ini"

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
check() { if [ "$2" -eq 0 ]; then pass "$1"; else fail "$1" "$3"; fi; }
# py EXPR FILE: evaluates a python expression over the JSON in FILE (as j); exit 0 when true
py() { python3 -c "import json,sys,math; j=json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" "$2"; }

"$SOV" plan --help >"$tmp/help" 2>&1
rc=$?
grep -q -- "--calibrate" "$tmp/help" && grep -q -- "--check" "$tmp/help"
check "plan --help lists the options" $(( rc != 0 || $? != 0 )) "rc $rc"
"$SOV" --help | grep -q '^  plan ' ; check "sov --help lists plan" $? "missing"

# the default table: every catalogue model on every profile
"$SOV" plan >"$tmp/out" 2>"$tmp/err"
rc=$?
ok=0; for id in llama-3.1-70b deepseek-v3-671b ryzen-ai-max-395 dgx-spark cloud-h100; do grep -q "$id" "$tmp/out" || ok=1; done
check "plan: the catalogue x hardware table" $(( rc != 0 || ok != 0 )) "rc $rc: $(head -c 300 "$tmp/err")"

"$SOV" plan --list >"$tmp/out" 2>&1
grep -q "source:" "$tmp/out" && grep -q "q4_k_m (4.84)" "$tmp/out"
check "plan --list: profiles with sources, quants with bits" $? "$(head -c 300 "$tmp/out")"

# --json: one object; 70B q4_k_m on the Ryzen profile: bound 256e9 / (69.5e9 x 0.605 + KV 4096 x 327,680) = 5.90
"$SOV" plan llama-3.1-70b --hw ryzen-ai-max-395,dgx-spark --json >"$tmp/j" 2>"$tmp/err"
rc=$?
py "len(j['predictions'])==2 and abs(j['predictions'][0]['decode_bound']-5.90)<0.01 and j['predictions'][0]['fits'] and not j['predictions'][0]['calibrated'] and j['predictions'][0]['decode']<=j['predictions'][0]['decode_bound']" "$tmp/j"
check "plan --json: 70B q4_k_m on 256 GB/s, bound 5.90 tok/s" $(( rc != 0 || $? != 0 )) "rc $rc: $(head -c 300 "$tmp/err")"
py "[o['name'] for o in j['options']]==['ryzen-ai-max-395','dgx-spark','hybrid (A + B)','cloud-h100'] and abs(j['options'][2]['tok_s']-j['options'][0]['tok_s']-j['options'][1]['tok_s'])<1e-9" "$tmp/j"
check "plan --json: A, B, hybrid and cloud side by side" $? "$(python3 -c 'import json,sys; print(str(json.load(open(sys.argv[1])).get("options"))[:300])' "$tmp/j")"
py "all(len(s)>20 for s in j['settings']['prices']['sources'])" "$tmp/j"
check "plan --json: the price defaults say where they come from" $? "-"

# --check: verdicts and exit statuses (3: a claim is wrong)
"$SOV" plan --check "70B Q4 on ryzen-ai-max-395 at 8 tok/s" >"$tmp/out" 2>&1
rc=$?
grep -q "impossible: at most 6.09 tok/s" "$tmp/out"
check "plan --check: 8 tok/s on 256 GB/s is impossible (exit 3)" $(( rc != 3 || $? != 0 )) "rc $rc: $(head -c 300 "$tmp/out")"
"$SOV" plan --check "5 tok/s is 432,000 tokens per day" >"$tmp/out" 2>&1
check "plan --check: a right claim exits 0" $? "$(head -c 300 "$tmp/out")"
"$SOV" plan --check "the moon is made of cheese" >"$tmp/out" 2>&1
rc=$?
grep -q "cannot read the claim" "$tmp/out"
check "plan --check: an unreadable claim is a usage error" $(( rc != 2 || $? != 0 )) "rc $rc: $(head -c 300 "$tmp/out")"

# --report: every claim judged, the three wrong ones flagged with the correct figure
"$SOV" plan --report >"$tmp/out" 2>"$tmp/err"
rc=$?
n=$(grep -c '^\[\(ok\|??\|XX\)\]' "$tmp/out")
grep -q "432,000 tokens a day, not 13.0 million" "$tmp/out" && grep -q "pays back in 247 days to 741 days" "$tmp/out" \
    && grep -q "hybrid (A + B)" "$tmp/out" && grep -q "round trip" "$tmp/out"
check "plan --report: $n claims with verdicts and the side-by-side table" $(( rc != 0 || n < 7 || $? != 0 )) "rc $rc n $n: $(head -c 300 "$tmp/err")"
"$SOV" plan --report --json >"$tmp/j" 2>"$tmp/err"
py "len(j['verdicts'])>=7 and j['rtt_s']>0 and all(v['arithmetic'] for v in j['verdicts'])" "$tmp/j"
check "plan --report --json: verdicts with arithmetic and a measured round trip" $? "$(head -c 300 "$tmp/err")"

# a GGUF model: its own bytes; `this` measured now (no calibration: assumed)
"$SOV" plan -m "$SH/models/stories260K.gguf" --hw this,rtx-4090-box --json >"$tmp/j" 2>"$tmp/err"
rc=$?
py "j['models'][0]['from_file'] and j['models'][0]['file_bytes']>0 and j['predictions'][0]['hw']=='this' and not j['predictions'][0]['calibrated'] and j['predictions'][0]['fits'] and j['hardware'][0]['bw']>1e9" "$tmp/j"
check "plan -m FILE --hw this: the file's bytes on this machine, measured" $(( rc != 0 || $? != 0 )) "rc $rc: $(head -c 300 "$tmp/err")"
"$SOV" plan "$SH/models/stories260K.gguf" --hw dgx-spark >"$tmp/out" 2>"$tmp/err"
grep -q "stories260K: " "$tmp/out" && grep -q "dgx-spark" "$tmp/out"
check "plan FILE: the model table" $? "$(head -c 300 "$tmp/err")"

# errors: one line, a non-zero status, nothing half-written
"$SOV" plan no-such-model >"$tmp/out" 2>"$tmp/err"
rc=$?
grep -q "neither a catalogue model" "$tmp/err"
check "plan: an unknown model is a usage error" $(( rc != 2 || $? != 0 )) "rc $rc: $(cat "$tmp/err")"
"$SOV" plan --hw nope >"$tmp/out" 2>"$tmp/err"
rc=$?; grep -q "no profile 'nope'" "$tmp/err"
check "plan --hw: an unknown profile is a usage error" $(( rc != 2 || $? != 0 )) "rc $rc: $(cat "$tmp/err")"
"$SOV" plan --quant q9_9 >"$tmp/out" 2>"$tmp/err"
check "plan --quant: an unknown quant is a usage error" $(( $? != 2 )) "$(cat "$tmp/err")"
"$SOV" plan --duty 2 >"$tmp/out" 2>"$tmp/err"
check "plan --duty: out of range is a usage error" $(( $? != 2 )) "$(cat "$tmp/err")"
printf '[hw.x]\nname = X\nmem_gb = ten\nbw_gbs = 100\n' >"$tmp/bad.ini"
"$SOV" plan --hw-file "$tmp/bad.ini" >"$tmp/out" 2>"$tmp/err"
rc=$?; grep -q "bad.ini:3: \[hw.x\] mem_gb" "$tmp/err"
check "plan --hw-file: a bad profile names its line" $(( rc != 1 || $? != 0 )) "rc $rc: $(cat "$tmp/err")"
"$SOV" plan -m "$tmp/missing.gguf" >"$tmp/out" 2>"$tmp/err"
rc=$?; grep -q "missing.gguf" "$tmp/err"
check "plan -m: a missing file" $(( rc != 1 || $? != 0 )) "rc $rc: $(cat "$tmp/err")"
mkdir -p "$tmp/none"; printf '[calibration]\nbogus = 1\n' >"$SOV_PLAN_CALIB"
"$SOV" plan --hw this >"$tmp/out" 2>"$tmp/err"
rc=$?; grep -q "calibration.ini:2" "$tmp/err"
check "plan: a bad calibration file names its line" $(( rc != 1 || $? != 0 )) "rc $rc: $(cat "$tmp/err")"
rm -f "$SOV_PLAN_CALIB"
"$SOV" plan --html /nonexistent/dir/x.html >"$tmp/out" 2>"$tmp/err"
check "plan --html: an unwritable path" $(( $? != 1 )) "$(cat "$tmp/err")"
