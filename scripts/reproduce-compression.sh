#!/usr/bin/env bash
# Deep Compression (Han, Mao and Dally 2016) on our Han-reproduction models: k-means weight
# sharing, fine-tuning of the shared values and Huffman coding of the pruned models made by
# scripts/reproduce-han.sh, then decompress and validate. Prints the per-layer table (the
# paper's Tables 2 and 3), the ratio against the dense .weights and top-1 against the dense
# model. Targets (issue 10): LeNet-300-100 >= 40x, LeNet-5 >= 39x, each at no more than
# +0.1 points of top-1 error against its dense model.
#
# Widths: first the paper's (Table 2: LeNet-300-100 6-bit weights, 5-bit relative indices;
# Table 3: LeNet-5 8-bit conv and 5-bit fc weights, 5-bit indices), then the same weights
# with 8-bit relative indices, which need fewer filler zeros on MNIST's zero borders.
#
# Usage: scripts/reproduce-compression.sh [lenet|lenet-300-100|all] [extra compress options]
# Environment: DENSE (default weights/reproduce), HAN (default weights/han-<net>),
# OUT (default weights/compress), FINETUNE (fine-tuning batches, default 1000).
set -euo pipefail
cd "$(dirname "$0")/.."
dense_dir=${DENSE:-weights/reproduce}
out=${OUT:-weights/compress}
finetune=${FINETUNE:-1000}
which=${1:-all}
shift || true
mkdir -p "$out"
summary="$out/summary.txt"

top1() { # top-1 (a fraction) of a weights file on the whole test list
  node bin/darknet-ts.js classifier valid cfg/mnist.data "cfg/$1.cfg" "$2" --json | node -e \
    'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).top1))'
}

run() {
  local net=$1 bits=$2 index=$3 label=$4
  shift 4
  local han=${HAN:-weights/han-$net}
  local pruned
  pruned=$(ls "$han/${net}"_round*.weights 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$pruned" ] || { echo "no $han/${net}_round<N>.weights: run scripts/reproduce-han.sh $net first" >&2; exit 1; }
  [ -f "$dense_dir/$net.weights" ] || { echo "no $dense_dir/$net.weights: run scripts/reproduce-accuracy.sh $net first" >&2; exit 1; }
  local dcw="$out/$net-$label.dcw" back="$out/$net-$label.weights"
  echo "== $net ($label): $pruned, --bits $bits --index-bits $index, $finetune fine-tuning batches"
  node bin/darknet-ts.js compress cfg/mnist.data "cfg/$net.cfg" "$pruned" "$dcw" \
    --bits "$bits" --index-bits "$index" --finetune-batches "$finetune" "$@" | tee "$out/$net-$label.txt"
  node bin/darknet-ts.js decompress "cfg/$net.cfg" "$dcw" "$back"
  local dense_top1 back_top1 dense_bytes dcw_bytes
  dense_top1=$(top1 "$net" "$dense_dir/$net.weights")
  back_top1=$(top1 "$net" "$back")
  dense_bytes=$(stat -c %s "$dense_dir/$net.weights")
  dcw_bytes=$(stat -c %s "$dcw")
  node -e '
    const [net, label, dense, back, db, cb] = process.argv.slice(1);
    const ratio = db / cb, points = 100 * (dense - back);
    const target = net === "lenet" ? 39 : 40;
    const ok = ratio >= target && points <= 0.1;
    console.log(`${net} (${label}): ${(+db).toLocaleString("en-US")} -> ${(+cb).toLocaleString("en-US")} bytes, ${ratio.toFixed(1)}x ` +
      `(target ${target}x); top-1 dense ${(100 * dense).toFixed(2)}%, decompressed .dcw ${(100 * back).toFixed(2)}% ` +
      `(error ${points >= 0 ? "+" : ""}${points.toFixed(2)} points, target <= +0.10): ${ok ? "reached" : "MISSED"}`);
  ' "$net" "$label" "$dense_top1" "$back_top1" "$dense_bytes" "$dcw_bytes" | tee -a "$summary"
}

if [ "$which" = all ] || [ "$which" = lenet-300-100 ]; then
  run lenet-300-100 fc=6 fc=5 paper "$@"
  run lenet-300-100 fc=6 fc=8 index8 "$@"
fi
if [ "$which" = all ] || [ "$which" = lenet ]; then
  run lenet conv=8,fc=5 conv=5,fc=5 paper "$@"
  run lenet conv=8,fc=5 conv=8,fc=8 index8 "$@"
fi
