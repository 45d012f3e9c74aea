#!/usr/bin/env bash
# `make demo`'s script (scripts/demo.sh) end to end: --once runs the scripted
# part and exits 0 with its table (routes and reasons as the example config
# says), the plan verdicts and the console URL, leaving no process and no
# network namespace; the interactive run stops cleanly on Ctrl-C (SIGINT to
# its process group, as a terminal sends it). Prints PASS/FAIL lines.
set -u
BUILD=${SOV_BUILD:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
check() { if [ "$2" -eq 0 ]; then pass "$1"; else fail "$1" "$3"; fi; }
leftovers() { # processes of the demo (its build/demo paths) and its namespaces
    pgrep -f "$BUILD/demo/hybrid.ini" >/dev/null 2>&1 && echo "workstation"
    pgrep -f "serve -m .* -np 8 -t 1 --chat-template llama2" >/dev/null 2>&1 && echo "box"
    command -v ip >/dev/null 2>&1 && ip netns list 2>/dev/null | grep -q '^sov-demo-' && echo "netns"
}

t0=$SECONDS
timeout -k 5 120 bash scripts/demo.sh "$BUILD" --once >"$tmp/out" 2>&1
rc=$?
check "demo --once exits 0 ($((SECONDS - t0)) s)" "$rc" "rc $rc: $(tail -n 5 "$tmp/out" | tr '\n' '|')"
row() { grep -E "^$1 " "$tmp/out" | head -n 1; }
ok=0
row "local-only alias" | grep -q " small .*privacy" || ok=1
row "local-only by header" | grep -q " small .*X-Sov-Privacy" || ok=1
row "an alias only the box has" | grep -q " box " || ok=1
row "second local model" | grep -q " tiny " || ok=1
check "demo: local-only stays here, the box-only alias goes to the box" $ok "$(sed -n '/^request/,/^after/p' "$tmp/out" | head -12 | tr '\n' '|')"
row "overflow: under load" | grep -q " box .*overflow: small has" 
check "demo: under load the request overflows to the box" $? "$(row "overflow: under load")"
grep -A1 "^JSON schema" "$tmp/out" | grep -q '"age"'
check "demo: the JSON-schema answer parses" $? "$(grep -A1 "^JSON schema" "$tmp/out" | tr '\n' '|')"
grep -q "impossible: at most 6.09 tok/s" "$tmp/out" && grep -q "hybrid .* against cloud-h100" "$tmp/out"
check "demo: sov plan's verdicts on the two architectures" $? "-"
url=$(sed -n 's/^console: \(http:[^ ]*\) .*/\1/p' "$tmp/out")
[ -n "$url" ]
check "demo: prints the console URL" $? "$(grep console "$tmp/out")"
sleep 0.5
left=$(leftovers)
[ -z "$left" ]
check "demo --once: no process or namespace left" $? "$left"

# the box on loopback (where no namespace can be made)
SOV_DEMO_LOOPBACK=1 timeout -k 5 120 bash scripts/demo.sh "$BUILD" --once >"$tmp/lo" 2>&1
rc=$?
grep -q "box .*http://127.0.0.1:[0-9]* *(loopback" "$tmp/lo" && grep -E "^an alias only the box has" "$tmp/lo" | grep -q " box "
check "demo --once with the box on loopback" $(( rc != 0 || $? != 0 )) "rc $rc: $(head -n 12 "$tmp/lo" | tr '\n' '|')"

# interactive: SIGINT to the process group (Ctrl-C) stops everything
python3 - "$BUILD" "$tmp/int.out" <<'PY'
import os, signal, subprocess, sys, time
build, out = sys.argv[1], sys.argv[2]
with open(out, "w") as f:
    p = subprocess.Popen(["bash", "scripts/demo.sh", build], stdout=f, stderr=subprocess.STDOUT,
                         start_new_session=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    t0 = time.time()
    while time.time() - t0 < 90:
        if "Ctrl-C stops them" in open(out).read() or p.poll() is not None:
            break
        time.sleep(0.2)
    import re, urllib.request
    m = re.search(r"^console: (http://\S+)", open(out).read(), re.M)
    page = ""
    if m:
        try:
            page = urllib.request.urlopen(m.group(1), timeout=5).read().decode("utf-8", "replace")
        except Exception as e:
            page = "error: %s" % e
    print("console", "ok" if "<html" in page.lower() else "bad: " + page[:200].replace("\n", " "), file=f)
    f.flush()
    os.killpg(p.pid, signal.SIGINT)
    try:
        rc = p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        rc = "hung"
    print("rc", rc, file=f)
PY
grep -q "^console ok" "$tmp/int.out"
check "demo: the console is reachable while the demo runs" $? "$(grep '^console' "$tmp/int.out")"
grep -q "Ctrl-C stops them" "$tmp/int.out" && grep -q "^rc 0$" "$tmp/int.out"
check "demo: Ctrl-C stops the interactive run (exit 0)" $? "$(tail -n 4 "$tmp/int.out" | tr '\n' '|')"
sleep 0.5
left=$(leftovers)
[ -z "$left" ]
check "demo after Ctrl-C: no process or namespace left" $? "$left"
