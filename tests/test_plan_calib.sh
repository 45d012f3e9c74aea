#!/usr/bin/env bash
# Acceptance of `sov plan --calibrate`: calibrated on this machine, `sov plan
# --hw this` predicts the measured tg tok/s (`sov bench -p 0 -n 32 -r 3`,
# mean of the runs) of the synthetic tinyllama-1.1b Q4_0 and Q8_0 models and
# the llama2-7b Q4_0 model within 15 %.
#
# The calibration runs on its own models (tinyllama-1.1b of seed 1; the
# targets are `sov synth`'s default seed 0, and llama2-7b is not calibrated
# on at all), so each prediction is bw x eff(quant) / bytes per token of
# the target, checked against those figures of the calibration file, not a
# stored measurement of the same file. The plan runs at --ctx 64 --kv-type
# f32: 32 KV positions read per token in f32, as the bench's tg32 after a
# 16-token prompt reads 32.5 on average.
#
# The machine is shared: a round whose measurement strays (others compiling
# on the same cores) is repeated, calibration and all, up to 3 rounds, for
# the targets not yet within 15 %; every PASS/FAIL line says which round.
# Models are kept in $SOV_BUILD/cache/plan (about 9 GB: 3.2 GB of
# calibration models, 5.6 GB of targets), so reruns take ~75 s; a first run
# synthesizes them (~85 s more). Skipped under sanitizers (timings).
set -u
SOV=${SOV_BIN:-build/sov}
BUILD=${SOV_BUILD:-build}
ROUNDS=${SOV_PLAN_CALIB_ROUNDS:-3}
TOL=0.15

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

if [ -n "${SOV_SANITIZED:-}" ]; then
    echo "INFO test_plan_calib.sh: skipped under sanitizers (a timing acceptance test)"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export SOV_PLAN_CALIB=$tmp/plan-calibration.ini
export SOV_CACHE=$BUILD/cache
CACHE=$SOV_CACHE/plan
mkdir -p "$CACHE"

# the targets: sov synth's default seed, reused when present
targets=(tinyllama-1.1b:q4_0 tinyllama-1.1b:q8_0 llama2-7b:q4_0)
for t in "${targets[@]}"; do
    shape=${t%%:*} type=${t##*:}
    f=$CACHE/target-$shape-$type.gguf
    if [ ! -f "$f" ]; then
        if ! "$SOV" synth "$shape" --type "$type" -q -o "$f" 2>"$tmp/synth.txt"; then
            fail "synth target $shape $type" "$(head -c 300 "$tmp/synth.txt")"
            exit 0
        fi
    fi
done

declare -A done_
for round in $(seq 1 "$ROUNDS"); do
    t0=$SECONDS
    "$SOV" plan --calibrate >"$tmp/cal.txt" 2>&1
    rc=$?
    if [ $rc -ne 0 ] || [ ! -f "$SOV_PLAN_CALIB" ]; then
        fail "plan --calibrate (round $round)" "rc $rc: $(tail -c 400 "$tmp/cal.txt")"
        exit 0
    fi
    if [ "$round" -eq 1 ]; then
        if python3 - "$SOV_PLAN_CALIB" "$CACHE" <<'EOF'
import configparser, os, sys
c = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
c.read(sys.argv[1])
cal = c["calibration"]
assert cal["version"] == "1" and float(cal["bw_gbs"]) > 0 and 0 < float(cal["eff_decode"]) <= 2, "calibration"
for q in ("q4_0", "q8_0"):
    s = c["quant." + q]
    assert "seed 1" in s["model"], s["model"]
    assert os.path.isfile(os.path.join(sys.argv[2], "tinyllama-1.1b-%s-seed1.gguf" % q)), q
    assert 0 < float(s["eff"]) <= 1.2 and float(s["tok_s"]) > 0, q
EOF
        then pass "plan --calibrate: file with [calibration], [quant.q4_0], [quant.q8_0] on seed-1 models in \$SOV_CACHE/plan (${SECONDS} s, synthesis included when needed)"
        else fail "plan --calibrate: file with [calibration], [quant.q4_0], [quant.q8_0] on seed-1 models in \$SOV_CACHE/plan" "$(head -c 600 "$SOV_PLAN_CALIB")"; fi
        grep -q '^| q4_0 ' "$tmp/cal.txt" && grep -q 'eff_decode' "$tmp/cal.txt" \
            && pass "plan --calibrate: prints the summary table" \
            || fail "plan --calibrate: prints the summary table" "$(tail -c 400 "$tmp/cal.txt")"
    fi
    echo "INFO round $round: calibration $((SECONDS - t0)) s: $(grep -E '^\| q[0-9]' "$tmp/cal.txt" | tr -s ' ' | tr '\n' ' ')"
    left=0
    for t in "${targets[@]}"; do
        [ -n "${done_[$t]:-}" ] && continue
        shape=${t%%:*} type=${t##*:}
        f=$CACHE/target-$shape-$type.gguf
        name="plan --hw this predicts tg32 of $shape $type within 15 %"
        "$SOV" bench -m "$f" -p 0 -n 32 -r 3 --json >"$tmp/b.json" 2>"$tmp/b.txt"
        brc=$?
        "$SOV" plan -m "$f" --hw this --ctx 64 --kv-type f32 --json >"$tmp/p.json" 2>"$tmp/p.txt"
        prc=$?
        if [ $brc -ne 0 ] || [ $prc -ne 0 ]; then
            fail "$name" "round $round: bench rc $brc, plan rc $prc: $(head -c 300 "$tmp/b.txt") $(head -c 300 "$tmp/p.txt")"
            done_[$t]=1
            continue
        fi
        verdict=$(python3 - "$tmp/b.json" "$tmp/p.json" "$SOV_PLAN_CALIB" "$type" "$TOL" "$round" "$ROUNDS" 2>&1 <<'EOF'
import configparser, json, sys
b, p, ini, quant, tol, rnd, rounds = sys.argv[1:]
tol, rnd, rounds = float(tol), int(rnd), int(rounds)
meas = json.load(open(b))["results"][0]["tps_mean"]
pr = json.load(open(p))["predictions"][0]
pred, cal = pr["decode"], pr["calibrated"]
c = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
c.read(ini)
bw, eff = float(c["calibration"]["bw_gbs"]) * 1e9, float(c["quant." + quant]["eff"])
model = bw * eff / pr["bytes_token"]  # what the calibration says, by the formula
dev = pred / meas - 1
info = ("round %d: predicted %.2f tok/s (%.2f GB/s x eff %.3f / %.1f MB per token), measured %.2f tok/s, %+.1f %%"
        % (rnd, pred, bw / 1e9, eff, pr["bytes_token"] / 1e6, meas, 100 * dev))
if cal is not True:
    print("FAIL not calibrated: " + info)
elif abs(model / pred - 1) > 1e-3:
    print("FAIL prediction %.3f is not bw x eff / bytes = %.3f: %s" % (pred, model, info))
elif abs(dev) <= tol:
    print("PASS " + info)
elif rnd < rounds:
    print("RETRY " + info)
else:
    print("FAIL " + info)
EOF
)
        case $verdict in
        PASS*) pass "$name (${verdict#PASS })"; done_[$t]=1 ;;
        RETRY*) echo "INFO $shape $type: ${verdict#RETRY }: measured again next round"; left=$((left + 1)) ;;
        *) fail "$name" "${verdict#FAIL }"; done_[$t]=1 ;;
        esac
    done
    [ $left -eq 0 ] && break
done
