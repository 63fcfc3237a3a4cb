#!/usr/bin/env bash
# Network slimming on a small residual net (issue 9): cfg/resnet-mnist.cfg (nine convs with
# batch norm, three [shortcut]s, one [route]) trained dense, and trained with
# `classifier train --slim S` (L1 on the batch-norm scales); then the slimmed model's
# filters ranked by |gamma| (`--criterion bn`) and removed, per-layer ratios chosen greedily
# for a FLOPs budget, and the smaller network fine-tuned, by `prune --structure channel`.
# The last round's model is then fine-tuned once more by `classifier train` on its own cfg
# (the schedule the cfg says: max_batches=2814, 3 epochs, poly from 0.05; the shrunk cfg is
# the original text with only filters= changed). Ends with dense vs shrunk: params, FLOPs,
# bytes, top-1 (10,000 test images) and speed. Also removes the slimmed model's lowest-|gamma|
# residual block whole (`prune channels --layers 1`) and gives its top-1 and speed.
#
# Usage: scripts/reproduce-channels-resnet.sh [dense.weights slim.weights]
# Environment: SLIM (0.005), FLOPS (0.3), ROUNDS (2), RETRAIN (1000 batches per round),
#   LR_SCALE (0.2), ROUND_TO (4), OUT (weights/reproduce-channels-resnet), DARKNET (optional
#   darknet binary: its classifier valid top-1 and wall time on dense and shrunk).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-weights/reproduce-channels-resnet}
slim=${SLIM:-0.005}
flops=${FLOPS:-0.3}
rounds=${ROUNDS:-2}
retrain=${RETRAIN:-1000}
lr_scale=${LR_SCALE:-0.2}
round_to=${ROUND_TO:-4}
cfg=cfg/resnet-mnist.cfg
dts() { node bin/darknet-ts.js "$@"; }
mkdir -p "$out"
[ -f data/mnist/train.list ] || dts data mnist
[ -f dist/scripts/bench-channels.js ] || npm run build
start=$(date +%s)

dense=${1:-}
slimmed=${2:-}
if [ -z "$dense" ]; then
  echo "== training the dense residual net (the cfg's max_batches: 3 epochs)"
  dts classifier train cfg/mnist.data $cfg --clear --backup "$out/dense" --log-every 500
  dense=$out/dense/resnet-mnist.weights
fi
if [ -z "$slimmed" ]; then
  echo "== training with --slim $slim (same schedule); |gamma| per epoch in $out/slim/resnet-mnist.gamma.png"
  dts classifier train cfg/mnist.data $cfg --clear --slim "$slim" --backup "$out/slim" --log-every 500
  slimmed=$out/slim/resnet-mnist.weights
fi

echo "== prune --structure channel --criterion bn --target-flops $flops (greedy), $rounds rounds of $retrain fine-tuning batches"
dts prune cfg/mnist.data $cfg "$slimmed" --structure channel --criterion bn --target-flops "$flops" --rounds "$rounds" \
  --retrain-batches "$retrain" --lr-scale "$lr_scale" --round-to "$round_to" --scan-images 500 --out "$out/loop" | tee "$out/prune.txt"
last=$(node -pe 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); r.history[r.history.length - 1].cfgFile' "$out/loop/report.json")
pruned_weights=${last%.cfg}.weights

echo "== fine-tuning $last once more (its cfg's schedule)"
dts classifier train cfg/mnist.data "$last" "$pruned_weights" --clear --backup "$out/finetuned" --log-every 500
tuned=$out/finetuned/$(basename "${last%.cfg}").weights

top1() { dts classifier valid cfg/mnist.data "$1" "$2" --json 2>/dev/null | node -pe 'JSON.parse(require("fs").readFileSync(0, "utf8")).top1.toFixed(4)'; }

echo "== prune channels --layers 1 --criterion bn: the residual block with the lowest mean |gamma| removed whole (no fine-tuning)"
dts prune channels $cfg "$slimmed" "$out/minus-block" --layers 1 --criterion bn | tee "$out/minus-block.txt"
printf 'top-1 (10,000 test images): slimmed %s, one block fewer %s\n' "$(top1 $cfg "$slimmed")" "$(top1 "$out/minus-block.cfg" "$out/minus-block.weights")"
node dist/scripts/bench-channels.js $cfg "$slimmed" "$out/minus-block.cfg" "$out/minus-block.weights" --reps 3 | tee "$out/minus-block-bench.txt"

echo
echo "== summary --compare"
dts summary "$last" --compare $cfg
echo
echo "== speed, in memory, dense and shrunk alternating"
node dist/scripts/bench-channels.js $cfg "$dense" "$last" "$tuned" --reps 5 | tee "$out/bench.txt"
echo
printf 'top-1 (10,000 test images): dense %s, slimmed %s, shrunk (loop) %s, fine-tuned once more %s\n' \
  "$(top1 $cfg "$dense")" "$(top1 $cfg "$slimmed")" "$(top1 "$last" "$pruned_weights")" "$(top1 "$last" "$tuned")"
if [ -n "${DARKNET:-}" ]; then
  echo "== darknet classifier valid"
  for m in "$cfg $dense" "$last $tuned"; do
    set -- $m
    s=$(date +%s.%N)
    "$DARKNET" classifier valid cfg/mnist.data "$1" "$2" 2>/dev/null | tail -1
    echo "  $1: $(echo "$(date +%s.%N) - $s" | bc) s"
  done
fi
echo "== done in $(($(date +%s) - start)) s; shrunk model: $last + $tuned"
