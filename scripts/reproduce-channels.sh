#!/usr/bin/env bash
# Channel pruning on LeNet-5 (issue 9): a dense model (trained here, or given), whole filters
# and neurons removed by `prune channels` into a SMALLER plain darknet model, that model
# fine-tuned with `classifier train` on the shrunk cfg (no masks: nothing is frozen, the
# removed filters are simply not there), then dense vs shrunk: parameters, FLOPs, bytes on
# disk and top-1 on the 10,000 MNIST test images (before and after fine-tuning).
#
# Usage: scripts/reproduce-channels.sh [dense.weights] [prune channels options]
#   without weights, trains cfg/lenet.cfg for DENSE_BATCHES first;
#   options default to --keep 0.3 --round-to 4 (criterion l1).
# Environment: DENSE_BATCHES (default 9380: the cfg's 10 epochs), FINETUNE_BATCHES (2000),
#   LR_SCALE (1: the cfg's rate, poly to 0 over the fine-tuning), OUT (weights/reproduce-channels).
# The backend is darknet-ts's default (auto), or DARKNET_TS_BACKEND.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-weights/reproduce-channels}
dense_batches=${DENSE_BATCHES:-9380}
finetune_batches=${FINETUNE_BATCHES:-2000}
lr_scale=${LR_SCALE:-1}
dts() { node bin/darknet-ts.js "$@"; }

dense=${1:-}
shift || true
opts=("$@")
[ ${#opts[@]} -gt 0 ] || opts=(--keep 0.3 --round-to 4)
mkdir -p "$out"
[ -f data/mnist/train.list ] || dts data mnist

start=$(date +%s)
if [ -z "$dense" ]; then
  echo "== training the dense LeNet-5 for $dense_batches batches"
  dts classifier train cfg/mnist.data cfg/lenet.cfg --clear --max-batches "$dense_batches" --backup "$out/dense" --log-every 1000
  dense=$out/dense/lenet.weights
fi

echo "== prune channels ${opts[*]}"
dts prune channels cfg/lenet.cfg "$dense" "$out/lenet-small" "${opts[@]}" | tee "$out/prune.txt"

echo "== fine-tuning the shrunk model for $finetune_batches batches"
dts classifier train cfg/mnist.data "$out/lenet-small.cfg" "$out/lenet-small.weights" --clear \
  --max-batches "$finetune_batches" --lr-scale "$lr_scale" --backup "$out/finetuned" --log-every 500
tuned=$out/finetuned/lenet-small.weights

top1() { dts classifier valid cfg/mnist.data "$1" "$2" --json 2>/dev/null | node -pe 'JSON.parse(require("fs").readFileSync(0, "utf8")).top1.toFixed(4)'; }
dense_top1=$(top1 cfg/lenet.cfg "$dense")
pruned_top1=$(top1 "$out/lenet-small.cfg" "$out/lenet-small.weights")
tuned_top1=$(top1 "$out/lenet-small.cfg" "$tuned")

echo
echo "== LeNet-5, dense vs shrunk (${opts[*]}; fine-tuned $finetune_batches batches at lr x $lr_scale), $(($(date +%s) - start))s"
grep -E '^(parameters|FLOPs|on disk):' "$out/prune.txt"
printf 'top-1:      %s -> %s pruned, %s fine-tuned (10,000 test images)\n' "$dense_top1" "$pruned_top1" "$tuned_top1"
echo "shrunk model: $out/lenet-small.cfg + $tuned"
