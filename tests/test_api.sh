#!/usr/bin/env bash
# Black-box tests of `sov serve` (the OpenAI-compatible HTTP server) with the
# official `openai` npm client: tests/api/*.test.mjs under node:test, one
# "PASS/FAIL <file>: <test>" line per test (tests/api/reporter.mjs).
# Needs node >= 20 and npm (the openai package comes from the npm registry
# through `npm ci`, pinned by tests/api/package-lock.json). Every server the
# tests start listens on 127.0.0.1 and is stopped at the end.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
# relative SOV_BIN / SOV_SHARED are relative to the current directory (the
# repository root under tests/run.sh); the defaults are relative to the root
abs() { case $1 in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "$1" ;; esac; }
if [ -n "${SOV_BIN:-}" ]; then SOV_BIN=$(abs "$SOV_BIN"); else SOV_BIN=$root/build/sov; fi
if [ -n "${SOV_SHARED:-}" ]; then SOV_SHARED=$(abs "$SOV_SHARED"); else SOV_SHARED=$root/../shared; fi
export SOV_BIN SOV_SHARED

for tool in node npm; do
    command -v "$tool" >/dev/null 2>&1 || { echo "FAIL api: $tool not found (the API tests need node >= 20 and npm)"; exit 1; }
done
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$major" -ge 20 ] 2>/dev/null || { echo "FAIL api: node $(node --version 2>/dev/null) is too old (need >= 20)"; exit 1; }

cd "$root/tests/api" || { echo "FAIL api: no tests/api"; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! timeout -k 5 180 npm ci --no-audit --no-fund --prefer-offline --loglevel=error >"$log" 2>&1; then
    why=$(sed -n 's/^npm error //p' "$log" | grep -vE '^(\s|[{}]|$|A complete log|If you are behind)' | head -n 5 | paste -sd ';' | cut -c1-400)
    [ -n "$why" ] || why=$(grep -v '^\s*$' "$log" | tail -n 3 | paste -sd ';' | cut -c1-400)
    echo "FAIL api: npm ci failed: ${why:-no output}"
    exit 1
fi

# quick files first; load and fuzz last. The per-file and per-test timeouts
# inside the files are tighter than this overall one.
files=(models.test.mjs completions.test.mjs chat.test.mjs errors.test.mjs concurrency.test.mjs router.test.mjs schema.test.mjs tools.test.mjs load.test.mjs fuzz.test.mjs)
timeout -k 10 600 node --test --test-reporter=./reporter.mjs "${files[@]}"
rc=$?
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "FAIL api: the API suite did not finish within 600 s"
fi
exit "$rc"
