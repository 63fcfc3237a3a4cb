#!/usr/bin/env bash
# Channel pruning on LeNet-5 (issue 9): a dense model (trained here, or given), then the
# iterative loop `prune --structure channel` (each round removes a step of filters and
# neurons, fine-tunes the SMALLER network, evaluates it, measures its speed, and writes
# <cfg>_round<N>.cfg + .weights), then dense vs shrunk side by side in one process
# (scripts/bench-channels.ts: images/s for training and inference, and a per-layer profile),
# `summary --compare`, and, when DARKNET names a built darknet, darknet's own top-1 and
# wall time on both models.
#
# Usage: scripts/reproduce-channels.sh [dense.weights] [prune options]
#   without weights, trains cfg/lenet.cfg for its max_batches (10 epochs) first;
#   options default to --keep 0.25 --round-to 4 --rounds 3 --retrain-batches 4000 --lr-scale 1.
# Environment: OUT (weights/reproduce-channels), DARKNET (path to a darknet binary; optional).
# The backend is darknet-ts's default (auto), or DARKNET_TS_BACKEND.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-weights/reproduce-channels}
dts() { node bin/darknet-ts.js "$@"; }

dense=${1:-}
shift || true
opts=("$@")
[ ${#opts[@]} -gt 0 ] || opts=(--keep 0.25 --round-to 4 --rounds 3 --retrain-batches 4000 --lr-scale 1)
mkdir -p "$out"
[ -f data/mnist/train.list ] || dts data mnist
[ -f dist/scripts/bench-channels.js ] || npm run build

start=$(date +%s)
if [ -z "$dense" ]; then
  echo "== training the dense LeNet-5 (the cfg's max_batches)"
  dts classifier train cfg/mnist.data cfg/lenet.cfg --clear --backup "$out/dense" --log-every 1000
  dense=$out/dense/lenet.weights
fi

echo "== prune --structure channel ${opts[*]}"
dts prune cfg/mnist.data cfg/lenet.cfg "$dense" --structure channel "${opts[@]}" --out "$out/loop" | tee "$out/prune.txt"
last=$(node -pe 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); r.history[r.history.length - 1].cfgFile' "$out/loop/report.json")
small_cfg=$last
small_weights=${last%.cfg}.weights

echo
echo "== summary --compare"
dts summary "$small_cfg" --compare cfg/lenet.cfg

echo
echo "== speed, in memory, dense and shrunk alternating"
node dist/scripts/bench-channels.js cfg/lenet.cfg "$dense" "$small_cfg" "$small_weights" | tee "$out/bench.txt"

if [ -n "${DARKNET:-}" ]; then
  echo
  echo "== darknet classifier valid (darknet's top-1 and wall time, 10,000 test images)"
  for m in "cfg/lenet.cfg $dense" "$small_cfg $small_weights"; do
    set -- $m
    s=$(date +%s.%N)
    "$DARKNET" classifier valid cfg/mnist.data "$1" "$2" 2>/dev/null | tail -1
    echo "  $1: $(echo "$(date +%s.%N) - $s" | bc) s"
  done
fi
echo
echo "== done in $(($(date +%s) - start)) s; shrunk model: $small_cfg + $small_weights"
