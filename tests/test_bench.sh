#!/usr/bin/env bash
# End-to-end tests of `sov bench` on the shared tiny models: the table has
# one row per model x threads x test with positive tok/s, the bandwidth
# path runs (small buffer), the JSON parses, has every field and its derived
# numbers (roofline %, GFLOP/s, bytes per token) follow from its raw ones;
# bad arguments fail with a message. Prints PASS/FAIL lines for tests/run.sh.
set -u
SOV=${SOV_BIN:-build/sov}
SH=${SOV_SHARED:-../shared}
S=$SH/models/stories260K.gguf
Q=$SH/models/quant/mini256-q8_0.gguf
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

# 1. table, no bandwidth: 2 threads x (pp16, pp32, tg8) rows, positive t/s
"$SOV" bench -m "$S" -t 1,2 -p 16,32 -n 8 -r 2 --no-bw >"$tmp/t.txt" 2>"$tmp/e.txt"
rc=$?
rows=$(grep -c '^| stories260K.gguf ' "$tmp/t.txt")
if [ $rc -eq 0 ] && [ "$rows" -eq 6 ]; then pass "bench table: 6 rows"
else fail "bench table: 6 rows" "rc $rc, $rows rows; $(head -c 300 "$tmp/e.txt")"; fi
bad=$(awk -F'|' '/^\| stories260K.gguf / {
        split($10, a, " "); if (!(a[1] + 0 > 0) || a[2] != "±") print "t/s:" $10
        t = $9; gsub(/ /, "", t)
        if (t ~ /^pp/ && $14 !~ /%/) print "pp without peak %:" $0
        if (t ~ /^tg/ && ($12 !~ /-/ || !($11 + 0 > 0))) print "tg GB/s or roofline:" $0
      }' "$tmp/t.txt")
expect=$(printf 'f32 1 pp16\nf32 1 pp32\nf32 1 tg8\nf32 2 pp16\nf32 2 pp32\nf32 2 tg8')
got=$(awk -F'|' '/^\| stories260K.gguf / { k = $7; t = $8; s = $9; gsub(/ /, "", k); gsub(/ /, "", t); gsub(/ /, "", s); print k, t, s }' "$tmp/t.txt")
if [ -z "$bad" ] && [ "$got" = "$expect" ]; then pass "bench table: threads x tests, positive t/s, pp peak %, tg GB/s"
else fail "bench table: threads x tests, positive t/s, pp peak %, tg GB/s" "$(echo "$bad $got" | head -c 400)"; fi
grep -q 'not measured (--no-bw)' "$tmp/t.txt" && grep -q 'fp32 peak, measured' "$tmp/t.txt" \
    && grep -q '^  stories260K.gguf: peak RSS [0-9.]* MiB; file 1.13 MiB' "$tmp/t.txt" \
    && pass "bench table: header and memory lines" || fail "bench table: header and memory lines" "$(head -c 400 "$tmp/t.txt")"

# 2. table with a small bandwidth buffer: bandwidth for 1 and 2 threads, tg rows get a roofline %
"$SOV" bench -m "$S" -t 2 -p 0 -n 8 -r 1 --bw-mib 64 >"$tmp/t2.txt" 2>"$tmp/e2.txt"
rc=$?
if [ $rc -eq 0 ] && grep -Eq '^memory read bandwidth \(64 MiB buffer.*: 1 thread [0-9.]+ GB/s \([a-z0-9]+\), 2 threads [0-9.]+ GB/s' "$tmp/t2.txt" \
   && [ "$(grep -c '^| stories260K.gguf ' "$tmp/t2.txt")" -eq 1 ] \
   && awk -F'|' '/^\| stories260K.gguf / { exit !($9 ~ /tg8/ && $12 ~ /[0-9.]+ %/) }' "$tmp/t2.txt"
then pass "bench --bw-mib 64: bandwidth line, tg-only row with roofline %"
else fail "bench --bw-mib 64: bandwidth line, tg-only row with roofline %" "rc $rc $(head -c 400 "$tmp/t2.txt") $(head -c 200 "$tmp/e2.txt")"; fi

# 3. --json, two models, bandwidth measured: parses, fields present, derived numbers consistent
"$SOV" bench -m "$S" -m "$Q" -t 1,2 -p 16 -n 8 -r 2 --bw-mib 64 --batch 5 --json >"$tmp/b.json" 2>"$tmp/e3.txt"
rc=$?
if [ $rc -eq 0 ] && python3 -m json.tool "$tmp/b.json" >/dev/null 2>&1; then pass "bench --json parses"
else fail "bench --json parses" "rc $rc $(head -c 300 "$tmp/e3.txt") $(head -c 200 "$tmp/b.json")"; fi
python3 - "$tmp/b.json" <<'EOF'
import json, math, sys
d = json.load(open(sys.argv[1]))
errs = []
def need(cond, what):
    if not cond: errs.append(what)
try:
    need(isinstance(d["backend"], str) and d["backend"], "backend")
    need(d["cpu"]["flop_per_cycle"] >= 0 and "mhz_source" in d["cpu"], "cpu")
    bw = {b["threads"]: b for b in d["bandwidth"]}
    need(sorted(bw) == [1, 2] and all(b["gbps"] > 0 and b["buffer_bytes"] == 64 << 20 and b["kernel"] for b in bw.values()), "bandwidth")
    pk = {p["threads"]: p for p in d["peak"]}
    need(sorted(pk) == [1, 2] and all(p["measured_gflops"] > 0 and p["used_gflops"] == max(p["theory_gflops"], p["measured_gflops"]) for p in pk.values()), "peak")
    need(d["settings"]["tg_prompt"] == 16 and d["settings"]["batch"] == 5 and d["settings"]["n_ctx"] == 24, "settings")
    need(d["settings"]["depths"] is None and d["settings"]["kv_types"] == ["f32"], "settings kv, depths")
    models = {m["model"]: m for m in d["models"]}
    need(sorted(models) == ["mini256-q8_0.gguf", "stories260K.gguf"], "models")
    for m in models.values():
        need(m["peak_rss_bytes"] >= m["weight_bytes_per_token"] > 0 and m["kv_bytes"] == m["kv_bytes_per_pos"] * 24, "model memory " + m["model"])
    need(models["stories260K.gguf"]["type"] == "f32" and models["mini256-q8_0.gguf"]["type"] == "q8_0", "types")
    res = d["results"]
    keys = sorted((r["model"], r["threads"], r["test"]) for r in res)
    want = sorted((m, t, x) for m in models for t in (1, 2) for x in ("pp16", "tg8"))
    need(keys == want, "result rows %s" % keys)
    for r in res:
        m = models[r["model"]]
        runs = r["runs_tps"]
        need(len(runs) == 2 and all(x > 0 for x in runs), "runs " + str(r))
        need(math.isclose(r["tps_mean"], sum(runs) / 2, rel_tol=1e-9), "mean " + str(r))
        # the runs are printed to ~10 digits: the stddev of two close runs
        # recomputed from them is good to ~1e-9 of the runs, not of itself
        need(math.isclose(r["tps_stddev"], abs(runs[0] - runs[1]) / math.sqrt(2), rel_tol=1e-6, abs_tol=1e-8 * max(runs)), "stddev " + str(r))
        if r["kind"] == "pp":
            fl = 2 * (m["layer_matrix_params"] * 16 + m["output_params"]) * r["tps_mean"] / 16 / 1e9
            need(math.isclose(r["gflops"], fl, rel_tol=1e-6), "gflops " + str(r))
            need(math.isclose(r["peak_pct"], 100 * fl / pk[r["threads"]]["used_gflops"], rel_tol=1e-6), "peak_pct " + str(r))
            need(r["roofline_pct"] is None and r["bytes_per_token"] is None and "bw_gbps_runs" not in r, "pp has no roofline")
        else:
            need(r["avg_ctx"] == 16 + 9 / 2 and r["n_before"] == 16, "avg_ctx " + str(r))
            need(r["kv_type"] == "f32" and r["kv_bytes_per_pos"] == m["kv_bytes_per_pos"], "kv " + str(r))
            bpt = m["weight_bytes_per_token"] + r["avg_ctx"] * m["kv_bytes_per_pos"]
            need(math.isclose(r["bytes_per_token"], bpt, rel_tol=1e-9), "bytes_per_token " + str(r))
            need(math.isclose(r["gbps"], r["tps_mean"] * bpt / 1e9, rel_tol=1e-6), "gbps " + str(r))
            # each timed run against the bandwidth measured right after it
            bwr = r["bw_gbps_runs"]
            need(len(bwr) == len(runs) and all(x > 0 for x in bwr), "bw_gbps_runs " + str(r))
            roof = sum(100 * t * bpt / 1e9 / b for t, b in zip(runs, bwr)) / len(runs)
            need(math.isclose(r["roofline_pct"], roof, rel_tol=1e-6), "roofline " + str(r))
            need(r["gflops"] is None and r["peak_pct"] is None, "tg has no gflops")
except Exception as e:  # a missing key or a wrong type
    errs.append("%s: %s" % (type(e).__name__, e))
print("PASS bench --json: fields and derived numbers" if not errs else "FAIL bench --json: fields and derived numbers: " + "; ".join(errs)[:600])
EOF

# 4. bad arguments: non-zero exit and a message naming the problem
check_err() { # name, expected rc, message regex, args...
    local name=$1 want=$2 re=$3; shift 3
    "$SOV" bench "$@" >"$tmp/o.txt" 2>"$tmp/e.txt"
    local rc=$?
    if [ $rc -eq "$want" ] && grep -Eq -e "$re" "$tmp/e.txt"; then pass "bench error: $name"
    else fail "bench error: $name" "rc $rc; $(head -c 200 "$tmp/e.txt")"; fi
}
check_err "empty list item" 2 "bad list '1,,2'" -m "$S" -t 1,,2 --no-bw
check_err "trailing comma" 2 "bad list" -m "$S" -p 8, --no-bw
check_err "zero threads" 2 "-t: 0 is out of range" -m "$S" -t 0 --no-bw
check_err "not a number" 2 "'abc' is not an integer" -m "$S" -n abc --no-bw
check_err "p beyond the context" 1 "-p 4096 exceeds the training context .*2048" -m "$S" -p 4096 --no-bw
check_err "n beyond the context" 1 "-n 2040 plus the 16-token tg prompt exceeds" -m "$S" -p 0 -n 2040 --no-bw
check_err "nothing to run" 2 "nothing to run" -m "$S" -p 0 -n 0 --no-bw
check_err "no model" 2 "-m MODEL is required" -p 8
check_err "missing file" 1 "cannot open" -m "$tmp/none.gguf" --no-bw
check_err "unknown option" 2 "unknown option '--frobnicate'" -m "$S" --frobnicate
check_err "zero repetitions" 2 "-r: 0 is out of range" -m "$S" -r 0 --no-bw
check_err "bandwidth buffer 0" 2 "--bw-mib: 0 is out of range" -m "$S" --bw-mib 0
check_err "unknown KV type" 2 "--kv-type: bad list 'f32,q4'" -m "$S" --kv-type f32,q4 --no-bw
check_err "negative depth" 2 "-d: -1 is out of range" -m "$S" -d -1 --no-bw
check_err "depth beyond the context" 1 "-n 8 at depth 2045 exceeds the training context .*2048" -m "$S" -p 0 -n 8 -d 2045 --no-bw
check_err "pp at depth beyond the context" 1 "-p 16 at depth 2040 exceeds the training context" -m "$S" -p 16 -n 0 -d 2040 --no-bw

# 5. --json-out: the table on stdout and the same JSON in a file; a failed run leaves no file
"$SOV" bench -m "$S" -t 1 -p 8 -n 4 -r 1 --no-bw --json-out "$tmp/o.json" >"$tmp/t5.txt" 2>"$tmp/e5.txt"
rc=$?
if [ $rc -eq 0 ] && [ "$(grep -c '^| stories260K.gguf ' "$tmp/t5.txt")" -eq 2 ] \
   && python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["bandwidth"] is None and len(d["results"]) == 2' "$tmp/o.json" 2>/dev/null
then pass "bench --json-out: table and JSON file"
else fail "bench --json-out: table and JSON file" "rc $rc $(head -c 300 "$tmp/e5.txt")"; fi
"$SOV" bench -m "$S" -p 4096 --no-bw --json-out "$tmp/f.json" >/dev/null 2>&1
[ ! -e "$tmp/f.json" ] && pass "bench --json-out: no file after a failed run" || fail "bench --json-out: no file after a failed run" "file left"
check_err "json-out in a missing folder" 1 "cannot create .*/nope/x.json" -m "$S" --no-bw --json-out "$tmp/nope/x.json"

# 6. --kv-type list and -d depths: one row per KV type x test x depth; the KV
# bytes of each type (stories260K: 5 layers x 4 kv heads x 8: f32 1280, f16 640,
# q8_0 400 bytes per position) in bytes per token at the depth's average position
"$SOV" bench -m "$S" -t 1 -p 8 -n 4 -r 1 --no-bw --kv-type f32,f16,q8_0 -d 0,40 --json >"$tmp/k.json" 2>"$tmp/e6.txt"
rc=$?
python3 - "$tmp/k.json" "$rc" <<'EOF'
import json, math, sys
errs = []
def need(cond, what):
    if not cond: errs.append(what)
try:
    need(sys.argv[2] == "0", "rc " + sys.argv[2])
    d = json.load(open(sys.argv[1]))
    need(d["settings"]["depths"] == [0, 40] and d["settings"]["kv_types"] == ["f32", "f16", "q8_0"] and d["settings"]["n_ctx"] == 48, "settings")
    m = d["models"][0]
    kvb = {"f32": 1280, "f16": 640, "q8_0": 400}
    need(m["kv_type"] == "f32" and m["kv_bytes_per_pos"] == 1280 and m["kv_bytes"] == 1280 * 48, "model kv")
    need([(x["kv_type"], x["kv_bytes_per_pos"], x["kv_bytes"]) for x in m["kv_by_type"]] == [(k, v, v * 48) for k, v in kvb.items()], "kv_by_type")
    keys = sorted((r["kv_type"], r["test"]) for r in d["results"])
    want = sorted((k, t) for k in kvb for t in ("pp8 @ d0", "pp8 @ d40", "tg4 @ d0", "tg4 @ d40"))
    need(keys == want, "rows %s" % keys)
    for r in d["results"]:
        need(r["kv_bytes_per_pos"] == kvb[r["kv_type"]], "kv bytes " + str(r))
        need(r["n_before"] == (40 if r["test"].endswith("d40") else 0) and r["tps_mean"] > 0, "depth " + str(r))
        if r["kind"] == "tg":
            need(r["avg_ctx"] == r["n_before"] + 5 / 2, "avg_ctx " + str(r))
            bpt = m["weight_bytes_per_token"] + r["avg_ctx"] * kvb[r["kv_type"]]
            need(math.isclose(r["bytes_per_token"], bpt, rel_tol=1e-9), "bytes_per_token " + str(r))
except Exception as e:
    errs.append("%s: %s" % (type(e).__name__, e))
print("PASS bench --kv-type f32,f16,q8_0 -d 0,40: rows, KV bytes per type, depths" if not errs else
      "FAIL bench --kv-type f32,f16,q8_0 -d 0,40: rows, KV bytes per type, depths: " + "; ".join(errs)[:600])
EOF
"$SOV" bench -m "$S" -t 1 -p 0 -n 4 -r 1 --no-bw --kv-type q8_0 -d 100 >"$tmp/t6.txt" 2>&1
if awk -F'|' '/^\| stories260K.gguf / { k = $7; t = $9; gsub(/ /, "", k); gsub(/ /, "", t); n++; ok = k == "q8_0" && t == "tg4@d100" } END { exit !(n == 1 && ok) }' "$tmp/t6.txt" \
   && grep -q 'KV cache q8_0 0.04 MiB (104 positions)' "$tmp/t6.txt"
then pass "bench table: kv column, tg4 @ d100, q8_0 KV memory"
else fail "bench table: kv column, tg4 @ d100, q8_0 KV memory" "$(head -c 600 "$tmp/t6.txt")"; fi

# 7. --kv-layout fixed,paged: one row per layout ("f16" and "f16 pg"), the
# layout in the JSON; a bad layout is an error
"$SOV" bench -m "$S" -t 1 -p 8 -n 4 -r 1 --no-bw --kv-type f16 --kv-layout fixed,paged -d 40 --json >"$tmp/l.json" 2>"$tmp/e7.txt"
rc=$?
if [ $rc -eq 0 ] && python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["settings"]["kv_layouts"] == ["fixed", "paged"]
rows = sorted((r["kv_type"], r["kv_layout"], r["test"]) for r in d["results"])
assert rows == sorted(("f16", l, t) for l in ("fixed", "paged") for t in ("pp8 @ d40", "tg4 @ d40")), rows
assert all(r["tps_mean"] > 0 for r in d["results"])
' "$tmp/l.json"; then pass "bench --kv-layout fixed,paged: a row per layout"
else fail "bench --kv-layout fixed,paged: a row per layout" "rc $rc $(head -c 300 "$tmp/e7.txt")"; fi
"$SOV" bench -m "$S" -t 1 -p 0 -n 4 -r 1 --no-bw --kv-type q8_0 --kv-layout paged >"$tmp/t7.txt" 2>&1
if awk -F'|' '/^\| stories260K.gguf / { k = $7; gsub(/^ +| +$/, "", k); n++; ok = k == "q8_0 pg" } END { exit !(n == 1 && ok) }' "$tmp/t7.txt"
then pass "bench table: paged rows say 'pg'"
else fail "bench table: paged rows say 'pg'" "$(head -c 600 "$tmp/t7.txt")"; fi
check_err "unknown KV layout" 2 "--kv-layout: bad list 'fixed,ring'" -m "$S" --kv-layout fixed,ring --no-bw
