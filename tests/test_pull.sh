#!/usr/bin/env bash
# sov pull / ls / rm and -m NAME, against a local stand-in for the Hugging
# Face hub (tests/pull_server.py on 127.0.0.1, the hub's URL layout): a
# complete download (size and sha256 checked, then sov ls, sov run -m NAME,
# sov serve -m NAME and a config's model = NAME), an interrupted download
# resumed with Range, a server that ignores Range, sha256 mismatches, 404,
# connection refused, a file that is not a GGUF, a full disk (a 1 MiB tmpfs;
# skipped with INFO where mount is not allowed), two pulls of one file at
# once, HF_TOKEN, and the progress bar on a terminal (script) and its
# absence elsewhere. Prints PASS/FAIL lines for tests/run.sh.
set -u
SOV=${SOV_BIN:-build/sov}
SH=$(cd "${SOV_SHARED:-../shared}" 2>/dev/null && pwd) || SH=${SOV_SHARED:-../shared} # absolute: the test server serves from another folder
M=$SH/models
HERE=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
srv_pid=""
serve_pid=""
cleanup() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
    [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null && wait "$srv_pid" 2>/dev/null
    mountpoint -q "$tmp/full" 2>/dev/null && umount "$tmp/full"
    rm -rf "$tmp"
}
trap cleanup EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
check() { if eval "$2"; then pass "$1"; else fail "$1" "$3"; fi; }
one_line() { tr '\n' '|' <"$1" | head -c 400; }

if [ ! -f "$M/stories260K.gguf" ]; then
    echo "INFO $M/stories260K.gguf missing: pull tests skipped"
    exit 0
fi
SRC=$M/stories260K.gguf
SHA=$(sha256sum "$SRC" | cut -d' ' -f1)
SIZE=$(stat -c %s "$SRC")
BIG=$M/llama-2-tiny-random.gguf

# the server's files: symlinks to the shared models (never copied), one repo per behaviour
R=$tmp/root/t
for repo in hub hub-cut norange hub-badsha plain slow hub-auth nolen; do
    mkdir -p "$R/$repo"
    ln -s "$SRC" "$R/$repo/stories260K.gguf"
done
ln -s "$BIG" "$R/nolen/llama-2-tiny-random.gguf"
printf '<!DOCTYPE html><html><body>Sign in to continue</body></html>\n' >"$R/plain/page.gguf"
printf 'GGUF but truncated' >"$R/plain/bad.gguf"

python3 "$HERE/pull_server.py" --root "$tmp/root" --log "$tmp/log" --port-file "$tmp/port" --cut 300000 \
    2>"$tmp/server.err" &
srv_pid=$!
for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
if [ ! -s "$tmp/port" ]; then
    fail "test server starts" "$(cat "$tmp/server.err")"
    exit 1
fi
PORT=$(cat "$tmp/port")
export SOV_HF_ENDPOINT=http://127.0.0.1:$PORT
unset HF_ENDPOINT HF_TOKEN
export SOV_MODELS=$tmp/models
pull() { timeout 30 "$SOV" pull "$@"; }
log_has() { grep -c -- "$1" "$tmp/log"; }

# 1. a complete download through the hub's redirect: size, sha256 (X-Linked-Etag), the ls line
pull hf://t/hub/stories260K.gguf >"$tmp/out" 2>"$tmp/err"
rc=$?
check "pull hf://: exit 0, same bytes" '[ $rc -eq 0 ] && cmp -s "$SRC" "$SOV_MODELS/stories260K.gguf"' "rc $rc; $(one_line "$tmp/err")"
check "pull: sha256 checked against X-Linked-Etag" 'grep -q "sha256 $SHA (matches X-Linked-Etag)" "$tmp/err"' "$(one_line "$tmp/err")"
check "pull: prints the name and its sov ls line" \
    'grep -q "^NAME " "$tmp/out" && grep -Eq "^stories260K +1\.1 MiB +llama +f32 +292\.8K$" "$tmp/out"' "$(one_line "$tmp/out")"
check "pull: hf:// mapped to ORG/REPO/resolve/main/FILE" \
    '[ "$(log_has "\"path\": \"/t/hub/resolve/main/stories260K.gguf\"")" = 1 ]' "$(cat "$tmp/log")"
check "pull: no .part left, no bar off a terminal" '[ ! -e "$SOV_MODELS/stories260K.gguf.part" ] && ! grep -q $'"'"'\r'"'"' "$tmp/err"' \
    "$(ls "$SOV_MODELS")"

# 2. sov ls, sov ls --json
"$SOV" ls >"$tmp/ls" 2>&1
check "ls: lists the model" 'grep -Eq "^stories260K +1\.1 MiB +llama +f32 +292\.8K$" "$tmp/ls"' "$(one_line "$tmp/ls")"
"$SOV" ls --json >"$tmp/ls.json" 2>&1
python3 - "$tmp/ls.json" "$SRC" "$SIZE" >"$tmp/py" 2>&1 <<'EOF'
import json, struct, sys
j = json.load(open(sys.argv[1]))
m = j["models"]
# the parameter count from the GGUF header, read here independently
f = open(sys.argv[2], "rb")
def rd(fmt): return struct.unpack("<" + fmt, f.read(struct.calcsize("<" + fmt)))
magic, ver, nt, nkv = rd("4sIQQ")
sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
def skip(t):
    if t == 8: n, = rd("Q"); f.read(n)
    elif t == 9:
        et, n = rd("IQ")
        for _ in range(n): skip(et)
    else: f.read(sizes[t])
for _ in range(nkv):
    n, = rd("Q"); f.read(n); t, = rd("I"); skip(t)
params = 0
for _ in range(nt):
    n, = rd("Q"); f.read(n); nd, = rd("I"); dims = rd("%dQ" % nd); rd("IQ")
    p = 1
    for d in dims: p *= d
    params += p
ok = (len(m) == 1 and m[0]["name"] == "stories260K" and m[0]["size"] == int(sys.argv[3]) and m[0]["arch"] == "llama"
      and m[0]["quant"] == "f32" and m[0]["params"] == params and m[0]["partial"] is False and m[0]["tensors"] == nt
      and j["dir"].endswith("/models"))
print("ok" if ok else "bad: %s (params %d)" % (m, params))
EOF
check "ls --json: name, size, arch, quant, params (= the header's count)" 'grep -q "^ok$" "$tmp/py"' "$(one_line "$tmp/py")"

# 3. -m NAME: sov run, sov info, sov serve, and a config's model = NAME
"$SOV" run -m "$SRC" --temp 0 -n 4 >"$tmp/want" 2>/dev/null
"$SOV" run -m stories260K --temp 0 -n 4 >"$tmp/got" 2>"$tmp/err"
rc=$?
check "run -m NAME: the pulled model, same text" '[ $rc -eq 0 ] && [ -s "$tmp/got" ] && cmp -s "$tmp/want" "$tmp/got"' \
    "rc $rc; $(one_line "$tmp/err")"
"$SOV" info stories260K >"$tmp/info" 2>&1
check "info NAME" 'grep -q "$SOV_MODELS/stories260K.gguf" "$tmp/info"' "$(one_line "$tmp/info")"
"$SOV" run -m nonesuch -n 1 >/dev/null 2>"$tmp/err"
rc=$?
check "run -m unknown NAME: clear error" '[ $rc -eq 1 ] && grep -q "no file '"'"'nonesuch'"'"' here and no model nonesuch in $SOV_MODELS" "$tmp/err"' \
    "rc $rc; $(one_line "$tmp/err")"
"$SOV" serve -m stories260K --port 0 -np 1 -t 1 >"$tmp/serve.out" 2>"$tmp/serve.err" &
serve_pid=$!
sport=""
for _ in $(seq 100); do
    sport=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/serve.err" | head -1)
    [ -n "$sport" ] && curl -sf "http://127.0.0.1:$sport/health" >/dev/null 2>&1 && break
    sleep 0.1
done
resp=$(curl -s --max-time 10 "http://127.0.0.1:$sport/v1/completions" -H 'Content-Type: application/json' \
    -d '{"model":"stories260K","prompt":"Once upon a time","max_tokens":4,"temperature":0}' 2>&1)
check "serve -m NAME: answers as model stories260K" \
    'echo "$resp" | python3 -c "import json,sys; r=json.load(sys.stdin); assert r[\"model\"]==\"stories260K\" and r[\"choices\"][0][\"text\"]"' \
    "port '$sport' resp $(echo "$resp" | head -c 200) $(one_line "$tmp/serve.err")"
kill "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null; serve_pid=""
mkdir -p "$tmp/cfg"
printf '[backend.l]\ntype = local\nmodel = stories260K\n[model.s]\nbackends = l\n' >"$tmp/cfg/c.ini"
"$SOV" serve --config "$tmp/cfg/c.ini" --check-config >"$tmp/cc" 2>&1
rc=$?
check "config: model = NAME from the folder" '[ $rc -eq 0 ] && grep -q "local *$SOV_MODELS/stories260K.gguf" "$tmp/cc"' \
    "rc $rc; $(one_line "$tmp/cc")"
printf '[backend.l]\ntype = local\nmodel = nonesuch\n[model.s]\nbackends = l\n' >"$tmp/cfg/c2.ini"
"$SOV" serve --config "$tmp/cfg/c2.ini" --check-config >"$tmp/cc" 2>&1
rc=$?
check "config: unknown NAME says where it looked" \
    '[ $rc -ne 0 ] && grep -q "c2.ini:3: \[backend.l\] model: cannot read $tmp/cfg/nonesuch: .*(and no model nonesuch in $SOV_MODELS)" "$tmp/cc"' \
    "rc $rc; $(one_line "$tmp/cc")"

# 4. an existing model is kept unless --force
pull hf://t/hub/stories260K.gguf >"$tmp/out" 2>"$tmp/err"
rc=$?
check "pull: an existing model is not replaced" '[ $rc -eq 1 ] && grep -q "stories260K.gguf already exists" "$tmp/err"' \
    "rc $rc; $(one_line "$tmp/err")"
pull hf://t/plain/stories260K.gguf --force --sha256 "$SHA" >"$tmp/out" 2>"$tmp/err"
rc=$?
check "pull --force --sha256: replaced, matches --sha256" \
    '[ $rc -eq 0 ] && grep -q "(matches --sha256)" "$tmp/err" && cmp -s "$SRC" "$SOV_MODELS/stories260K.gguf"' \
    "rc $rc; $(one_line "$tmp/err")"

# 5. an interrupted download resumes with Range
D=$tmp/m_cut
pull hf://t/hub-cut/stories260K.gguf --dir "$D" >/dev/null 2>"$tmp/err"
rc=$?
psize=$(stat -c %s "$D/stories260K.gguf.part" 2>/dev/null || echo none)
check "cut: clear error, .part kept, no final file" \
    '[ $rc -eq 1 ] && grep -q "download interrupted after 300000 of $SIZE bytes" "$tmp/err" && [ "$psize" = 300000 ] && [ ! -e "$D/stories260K.gguf" ]' \
    "rc $rc part $psize; $(one_line "$tmp/err")"
pull hf://t/hub-cut/stories260K.gguf --dir "$D" >/dev/null 2>"$tmp/err"
rc=$?
check "cut: the rerun resumes (Range: bytes=300000-, 206) and completes" \
    '[ $rc -eq 0 ] && [ "$(grep -c "\"range\": \"bytes=300000-\", \"auth\": null, \"status\": 206" "$tmp/log")" = 1 ] && grep -q "resumed after 300000 bytes" "$tmp/err"' \
    "rc $rc; $(one_line "$tmp/err")"
check "cut: the resumed file's sha256 is the original's" \
    '[ "$(sha256sum "$D/stories260K.gguf" | cut -d" " -f1)" = "$SHA" ] && grep -q "matches X-Linked-Etag" "$tmp/err" && [ ! -e "$D/stories260K.gguf.part" ]' \
    "$(one_line "$tmp/err")"

# 6. a server that ignores Range: 200, start over
D=$tmp/m_norange
mkdir -p "$D"
head -c 500000 "$SRC" >"$D/stories260K.gguf.part"
pull hf://t/norange/stories260K.gguf --dir "$D" >/dev/null 2>"$tmp/err"
rc=$?
check "norange: Range sent, 200 answered, downloaded from the start" \
    '[ $rc -eq 0 ] && grep -q "/t/norange/resolve/main/stories260K.gguf\", \"range\": \"bytes=500000-\", \"auth\": null, \"status\": 200" "$tmp/log" && grep -q "downloaded from the start" "$tmp/err" && cmp -s "$SRC" "$D/stories260K.gguf"' \
    "rc $rc; $(one_line "$tmp/err")"
# a .part longer than the file: 416, start over
D=$tmp/m_416
mkdir -p "$D"
{ cat "$SRC"; printf 'extra'; } >"$D/stories260K.gguf.part"
pull hf://t/hub/stories260K.gguf --dir "$D" >/dev/null 2>"$tmp/err"
rc=$?
check "416: a .part longer than the file starts over" '[ $rc -eq 0 ] && cmp -s "$SRC" "$D/stories260K.gguf"' "rc $rc; $(one_line "$tmp/err")"
# a complete .part (renaming was interrupted): 416 with the same total, verified, kept
D=$tmp/m_done
mkdir -p "$D"
cat "$SRC" >"$D/stories260K.gguf.part"
pull hf://t/hub/stories260K.gguf --dir "$D" >/dev/null 2>"$tmp/err"
rc=$?
check "416: a complete .part is verified and renamed" \
    '[ $rc -eq 0 ] && cmp -s "$SRC" "$D/stories260K.gguf" && grep -q "matches X-Linked-Etag" "$tmp/err"' "rc $rc; $(one_line "$tmp/err")"

# 7. sha256 mismatches: rejected, nothing under the final name, no .part
D=$tmp/m_bad
pull hf://t/hub-badsha/stories260K.gguf --dir "$D" >/dev/null 2>"$tmp/err"
rc=$?
check "badsha: the hub's X-Linked-Etag mismatch is rejected, nothing left" \
    '[ $rc -eq 1 ] && grep -q "sha256 mismatch for stories260K.gguf: the download has $SHA, X-Linked-Etag says" "$tmp/err" && [ -z "$(ls -A "$D")" ]' \
    "rc $rc; $(ls -A "$D"); $(one_line "$tmp/err")"
pull hf://t/plain/stories260K.gguf --dir "$D" --sha256 0000000000000000000000000000000000000000000000000000000000000000 \
    >/dev/null 2>"$tmp/err"
rc=$?
check "--sha256 mismatch is rejected, nothing left" \
    '[ $rc -eq 1 ] && grep -q "sha256 mismatch.*--sha256 says 0000" "$tmp/err" && [ -z "$(ls -A "$D")" ]' \
    "rc $rc; $(one_line "$tmp/err")"
pull hf://t/plain/stories260K.gguf --dir "$D" --sha256 12ab >/dev/null 2>"$tmp/err"
rc=$?
check "--sha256 not 64 hex digits: usage error" '[ $rc -eq 2 ] && grep -q "not 64 hex digits" "$tmp/err"' "rc $rc"

# 8. 404, connection refused, not GGUF, bad sources
D=$tmp/m_err
pull hf://t/hub/nothere.gguf --dir "$D" >/dev/null 2>"$tmp/err"
rc=$?
check "404: not found: URL, nothing left" \
    '[ $rc -eq 1 ] && grep -q "^sov pull: not found: http://127.0.0.1:$PORT/t/hub/resolve/main/nothere.gguf (HTTP 404)$" "$tmp/err" && [ -z "$(ls -A "$D")" ]' \
    "rc $rc; $(one_line "$tmp/err")"
dead=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
pull "http://127.0.0.1:$dead/x/stories260K.gguf" --dir "$D" >/dev/null 2>"$tmp/err"
rc=$?
check "connection refused: clear error" \
    '[ $rc -eq 1 ] && grep -q "cannot download http://127.0.0.1:$dead/x/stories260K.gguf: .*\(onnection refused\|ouldn.t connect\)" "$tmp/err" && [ -z "$(ls -A "$D")" ]' \
    "rc $rc; $(one_line "$tmp/err")"
pull hf://t/plain/page.gguf --dir "$D" >/dev/null 2>"$tmp/err"
rc=$?
check "not GGUF (an HTML page): rejected at the magic, removed" \
    '[ $rc -eq 1 ] && grep -q "not a GGUF file: .*page.gguf (it starts with \"<!DO\"" "$tmp/err" && [ -z "$(ls -A "$D")" ]' \
    "rc $rc; $(one_line "$tmp/err")"
pull hf://t/plain/bad.gguf --dir "$D" >/dev/null 2>"$tmp/err"
rc=$?
check "a truncated GGUF: rejected by the parser, removed" \
    '[ $rc -eq 1 ] && grep -q "not a valid GGUF file" "$tmp/err" && [ -z "$(ls -A "$D")" ]' "rc $rc; $(one_line "$tmp/err")"
pull hf://t/hub >/dev/null 2>"$tmp/err"
rc=$?
check "hf:// without a file: usage error" '[ $rc -eq 2 ] && grep -q "expected hf://ORG/REPO/FILE.gguf" "$tmp/err"' "rc $rc; $(one_line "$tmp/err")"
pull ftp://example.com/x.gguf >/dev/null 2>"$tmp/err"
rc=$?
check "ftp:// is not a source" '[ $rc -eq 2 ] && grep -q "is not a URL" "$tmp/err"' "rc $rc; $(one_line "$tmp/err")"

# 9. @REVISION, --name, a plain URL, HF_TOKEN
D=$tmp/m_misc
pull hf://t/plain/stories260K.gguf@v1.0 --dir "$D" --name tiny-story >"$tmp/out" 2>"$tmp/err"
rc=$?
check "@REVISION and --name (.gguf appended)" \
    '[ $rc -eq 0 ] && log_has "/t/plain/resolve/v1.0/stories260K.gguf" >/dev/null && cmp -s "$SRC" "$D/tiny-story.gguf" && grep -q "^tiny-story " "$tmp/out"' \
    "rc $rc; $(one_line "$tmp/err")"
check "no hash from the server: printed, said not checked" 'grep -q "sha256 $SHA (not checked" "$tmp/err"' "$(one_line "$tmp/err")"
pull "http://127.0.0.1:$PORT/t/plain/resolve/main/stories260K.gguf" --dir "$D" >/dev/null 2>"$tmp/err"
rc=$?
check "a plain http:// URL" '[ $rc -eq 0 ] && cmp -s "$SRC" "$D/stories260K.gguf"' "rc $rc; $(one_line "$tmp/err")"
pull hf://t/hub-auth/stories260K.gguf --dir "$D" --name auth >/dev/null 2>"$tmp/err"
rc=$?
check "401 without HF_TOKEN: says so" '[ $rc -eq 1 ] && grep -q "HTTP 401 (unauthorized) from .*needs HF_TOKEN" "$tmp/err"' \
    "rc $rc; $(one_line "$tmp/err")"
HF_TOKEN=secret pull hf://t/hub-auth/stories260K.gguf --dir "$D" --name auth >/dev/null 2>"$tmp/err"
rc=$?
check "HF_TOKEN is sent as a bearer token" \
    '[ $rc -eq 0 ] && grep -q "\"auth\": \"Bearer secret\", \"status\": 302" "$tmp/log" && cmp -s "$SRC" "$D/auth.gguf"' \
    "rc $rc; $(one_line "$tmp/err")"

# 10. two pulls of one file at once: the second is refused while the first runs
D=$tmp/m_two
pull hf://t/slow/stories260K.gguf --dir "$D" >/dev/null 2>"$tmp/err1" &
p1=$!
for _ in $(seq 50); do [ -e "$D/stories260K.gguf.part" ] && break; sleep 0.05; done
pull hf://t/slow/stories260K.gguf --dir "$D" >/dev/null 2>"$tmp/err2"
rc2=$?
wait $p1
rc1=$?
check "two pulls at once: the second is refused, the first completes" \
    '[ $rc2 -eq 1 ] && grep -q "another sov pull is downloading stories260K.gguf" "$tmp/err2" && [ $rc1 -eq 0 ] && cmp -s "$SRC" "$D/stories260K.gguf"' \
    "rc $rc1/$rc2; $(one_line "$tmp/err2")"

# 11. the progress bar on a terminal (script gives the command a pty), none with -q
if command -v script >/dev/null 2>&1; then
    D=$tmp/m_tty
    t0=$(date +%s%N)
    TERM=xterm script -qec "$SOV pull hf://t/slow/stories260K.gguf --dir $D" /dev/null >"$tmp/tty" 2>&1
    rc=$?
    most=$(( ($(date +%s%N) - t0) / 100000000 + 2 ))  # 10 a second, + the final line
    frames=$(tr '\r' '\n' <"$tmp/tty" | grep -c "^stories260K.gguf .*%.*\[")
    check "tty: a bar with %, sizes, rate and ETA, redrawn in place, ended by a newline" \
        '[ $rc -eq 0 ] && [ "$frames" -ge 3 ] && grep -q "ETA 0:0" "$tmp/tty" && grep -aq "KiB/s\|MiB/s" "$tmp/tty" && tr "\r" "\n" <"$tmp/tty" | grep -aq "100% \[=*\] 1.1 MiB .* in [0-9.]* s"' \
        "rc $rc frames $frames; $(head -c 300 "$tmp/tty" | tr '\r\033' '|~')"
    check "tty: rate-limited redraws (<= 10 a second)" '[ "$frames" -le "$most" ]' "$frames frames, at most $most"
    rm -rf "$D"
    TERM=xterm script -qec "$SOV pull -q hf://t/slow/stories260K.gguf --dir $D" /dev/null >"$tmp/tty" 2>&1
    rc=$?
    check "tty with -q: no bar" '[ $rc -eq 0 ] && ! grep -q "%" "$tmp/tty"' "rc $rc; $(head -c 200 "$tmp/tty" | tr '\r' '|')"
else
    echo "INFO script (bsdutils) not found: terminal checks skipped"
fi

# 12. a full disk: a 1 MiB tmpfs as the models folder
mkdir -p "$tmp/full"
if mount -t tmpfs -o size=1m tmpfs "$tmp/full" 2>/dev/null; then
    SOV_MODELS=$tmp/full pull hf://t/hub/stories260K.gguf >/dev/null 2>"$tmp/err"
    rc=$?
    check "disk full (size known): clear error before writing, nothing left" \
        '[ $rc -eq 1 ] && grep -q "^sov pull: disk full: $tmp/full has [0-9]* bytes free, stories260K.gguf needs $SIZE more$" "$tmp/err" && [ -z "$(ls -A "$tmp/full")" ]' \
        "rc $rc; $(ls -A "$tmp/full"); $(one_line "$tmp/err")"
    SOV_MODELS=$tmp/full pull hf://t/nolen/llama-2-tiny-random.gguf >/dev/null 2>"$tmp/err"
    rc=$?
    check "disk full (no Content-Length): ENOSPC while writing, .part removed, nothing left" \
        '[ $rc -eq 1 ] && grep -q "^sov pull: disk full: [0-9]* bytes written to $tmp/full; removed llama-2-tiny-random.gguf.part to free the space$" "$tmp/err" && [ -z "$(ls -A "$tmp/full")" ]' \
        "rc $rc; $(ls -A "$tmp/full"); $(one_line "$tmp/err")"
    umount "$tmp/full"
else
    echo "INFO cannot mount a tmpfs (not root?): disk-full checks skipped"
fi

# 13. sov rm, unknown names, a partial in sov ls
head -c 1000 "$SRC" >"$SOV_MODELS/half.gguf.part"
"$SOV" ls >"$tmp/ls" 2>&1
check "ls: a .part is listed as a partial download" 'grep -Eq "^half +1000 B +\(partial download: half.gguf.part\)$" "$tmp/ls"' "$(one_line "$tmp/ls")"
"$SOV" rm stories260K half >/dev/null 2>"$tmp/err"
rc=$?
check "rm: removes models and partials" \
    '[ $rc -eq 0 ] && [ ! -e "$SOV_MODELS/stories260K.gguf" ] && [ ! -e "$SOV_MODELS/half.gguf.part" ]' "rc $rc; $(one_line "$tmp/err")"
"$SOV" rm stories260K >/dev/null 2>"$tmp/err"
rc=$?
check "rm: an unknown name is an error" '[ $rc -eq 1 ] && grep -q "no model stories260K in $SOV_MODELS" "$tmp/err"' \
    "rc $rc; $(one_line "$tmp/err")"
"$SOV" rm ../etc >/dev/null 2>"$tmp/err"
rc=$?
check "rm: a path is not a name" '[ $rc -eq 1 ] && grep -q "is not a model name" "$tmp/err"' "rc $rc; $(one_line "$tmp/err")"
"$SOV" ls --json >"$tmp/ls.json" 2>&1
check "ls --json: empty folder" 'python3 -c "import json,sys; assert json.load(open(sys.argv[1]))[\"models\"] == []" "$tmp/ls.json"' \
    "$(one_line "$tmp/ls.json")"
SOV_MODELS=$tmp/never "$SOV" ls >"$tmp/ls" 2>&1
rc=$?
check "ls: a missing folder has no models" '[ $rc -eq 0 ] && grep -q "no models in $tmp/never" "$tmp/ls"' "rc $rc; $(one_line "$tmp/ls")"
exit 0
