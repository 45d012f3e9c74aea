#!/usr/bin/env bash
# Runs every test program in BUILD/tests and every tests/*.sh script, counts
# the PASS/FAIL lines they print, and ends with "N passed, N failed".
# A program that exits non-zero without printing FAIL counts as one failure.
set -u
BUILD=${1:-build}
export SOV_BIN="$PWD/$BUILD/sov"
export SOV_BUILD="$PWD/$BUILD"
export SOV_SHARED=${SOV_SHARED:-$PWD/../shared}
pass=0; fail=0; failed_names=()
log=$(mktemp)
run_one() {
    local name=$1; shift
    local t0=$SECONDS
    "$@" >"$log" 2>&1
    local rc=$?
    local p f
    p=$(grep -c '^PASS ' "$log"); f=$(grep -c '^FAIL ' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1; echo "FAIL $name: exited with status $rc" >>"$log"
    fi
    pass=$((pass + p)); fail=$((fail + f))
    [ "$f" -gt 0 ] && failed_names+=("$name")
    printf '%-28s %4d passed %3d failed  (%ds)\n' "$name" "$p" "$f" $((SECONDS - t0))
    grep -E '^(FAIL|INFO) ' "$log" | head -40 | sed 's/^/    /'
    if [ "$rc" -ne 0 ]; then tail -n 15 "$log" | grep -vE '^(PASS|FAIL|INFO) ' | sed 's/^/    | /'; fi
}
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    run_one "$(basename "$t")" "$t"
done
for s in tests/test_*.sh; do
    [ -f "$s" ] || continue
    run_one "$(basename "$s")" bash "$s"
done
rm -f "$log"
[ ${#failed_names[@]} -gt 0 ] && echo "failing: ${failed_names[*]}"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
