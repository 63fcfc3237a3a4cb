#!/usr/bin/env bash
# Han et al. 2015 on our own dense models (from scripts/reproduce-accuracy.sh): prune
# LeNet-5 and LeNet-300-100 to 12x fewer weights or more with frozen-zero retraining,
# and compare top-1 error with the dense models. Per-layer final rates follow the
# paper's kept fractions (LeNet-5 66/12/8/19%, LeNet-300-100 8/9/26%), nudged so the
# total reaches 12x. Usage: scripts/reproduce-han.sh [lenet|lenet-300-100] [extra prune options]
set -euo pipefail
cd "$(dirname "$0")/.."
dense=weights/reproduce
which=${1:-all}
shift || true
run() {
  local net=$1 rates=$2
  shift 2
  [ -f "$dense/$net.weights" ] || { echo "no $dense/$net.weights: run scripts/reproduce-accuracy.sh first" >&2; exit 1; }
  local start end
  start=$(date +%s)
  node bin/darknet-ts.js prune cfg/mnist.data "cfg/$net.cfg" "$dense/$net.weights" \
    --mode sensitivity --layer-sparsity "$rates" --rounds 6 --retrain-batches 4000 --lr-scale 0.3 \
    --out "weights/han-$net" "$@"
  end=$(date +%s)
  echo "$net: recipe took $((end - start))s"
}
if [ "$which" = all ] || [ "$which" = lenet ]; then
  run lenet conv1=0.34,conv2=0.88,fc1=0.925,fc2=0.81 "$@"
fi
if [ "$which" = all ] || [ "$which" = lenet-300-100 ]; then
  run lenet-300-100 fc1=0.92,fc2=0.91,fc3=0.74 "$@"
fi
