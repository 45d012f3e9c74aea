#!/usr/bin/env bash
# The main job, end to end: describe a model, then generate text with it.
set -euo pipefail
BUILD=${1:-build}
SH=${SOV_SHARED:-../shared}
M=$SH/models/stories260K.gguf
[ -f "$M" ] || { echo "demo: $M not found (set SOV_SHARED to the shared data folder)" >&2; exit 1; }
echo "== sov info $M"
"$BUILD/sov" info "$M"
echo
echo "== sov run -m $M -p 'Once upon a time' -n 150 --temp 0"
printf 'Once upon a time'
"$BUILD/sov" run -m "$M" -p "Once upon a time" -n 150 --temp 0
echo
echo
echo "== sov run (sampled: --temp 0.8 --seed 1)"
"$BUILD/sov" run -m "$M" -n 100 --temp 0.8 --seed 1
echo
