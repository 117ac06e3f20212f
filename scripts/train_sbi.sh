#!/usr/bin/env bash
# The long, resumable SBI-only training of fakelens-default-v2 on the shared face pool (CPU, ~100 min on 2 cores).
#   bash scripts/train_sbi.sh            # starts, or resumes runs/sbi after an interruption
# Runs `fakelens train --resume` until the run is finished, so a killed job loses at most one epoch.
set -euo pipefail
cd "$(dirname "$0")/.."
FL=${FL:-.venv/bin/fakelens}
OUT=${OUT:-runs/sbi}
INIT=${INIT:-../shared/weights/mobilenet_v2_imagenet.pth}
DEVICE=${DEVICE:-auto}
WORKERS=${WORKERS:-2}
if [ -f "$OUT/last.pt" ]; then
  $FL train --out "$OUT" --resume --device "$DEVICE" --workers "$WORKERS" --no-progress
else
  # 10 epochs x 6,000 images = 60,000 draws (30,000 real/pseudo-fake pairs); full fine-tuning, the backbone
  # at a third of the head's LR; the best epoch by val AUC (face-pool val identities + fixed SBI fakes).
  $FL train --manifest runs/faces/manifest.csv --out "$OUT" --init "$INIT" --fakes sbi \
    --epochs 10 --samples-per-epoch 6000 --batch-size 32 --lr 3e-4 --backbone-lr-mult 0.33 \
    --warmup-epochs 0.5 --freeze-backbone-epochs 0 --patience 0 --seed 0 \
    --device "$DEVICE" --workers "$WORKERS" --no-progress
fi
