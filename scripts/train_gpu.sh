#!/usr/bin/env bash
# The GPU recipe of the SBI-only model: the same data and schedule shape as scripts/train_sbi.sh, with a
# larger budget, AMP (bf16 where supported) and channels-last (both on by default on CUDA), batch 256, one
# loader worker per spare core, and fakelens-default-v4's tight face-crop augmentation (--tight-crop-p 0.25).
# Sized for <= 10 minutes on one H200-class GPU with 16 cores, where the SBI generation in the loader
# workers (~1,000 img/s on 16 cores), not the GPU, sets the pace.
#   bash scripts/train_gpu.sh                 # or OUT=runs/sbi-gpu EPOCHS=12 bash scripts/train_gpu.sh
# Resumable like the CPU run: rerun the same command after an interruption.
# Not yet run on a GPU by the project (no device was lent when it was written): measure before trusting the time.
set -euo pipefail
cd "$(dirname "$0")/.."
FL=${FL:-.venv/bin/fakelens}
OUT=${OUT:-runs/sbi-gpu}
INIT=${INIT:-../shared/weights/mobilenet_v2_imagenet.pth}
EPOCHS=${EPOCHS:-10}
WORKERS=${WORKERS:-$(( $(nproc) > 2 ? $(nproc) - 2 : 1 ))}
[ -f runs/faces/manifest.csv ] || {
  .venv/bin/python scripts/pool_lists.py ../shared/data runs
  $FL preprocess ../shared/data --dataset list --list runs/face_pool.csv --val-fraction 0.05 --seed 0 \
    --frames 1 --min-face-size 20 --workers "$WORKERS" --out runs/faces
}
if [ -f "$OUT/last.pt" ]; then
  $FL train --out "$OUT" --resume --device cuda --workers "$WORKERS"
else
  $FL train --manifest runs/faces/manifest.csv --out "$OUT" --init "$INIT" --fakes sbi \
    --epochs "$EPOCHS" --samples-per-epoch 40000 --batch-size 256 --lr 1e-3 --backbone-lr-mult 0.33 \
    --warmup-epochs 0.5 --freeze-backbone-epochs 0 --patience 0 --seed 0 --tight-crop-p 0.25 --device cuda --workers "$WORKERS"
fi
