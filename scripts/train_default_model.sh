#!/usr/bin/env bash
# Reproduces the bundled default model (src/fakelens/weights/default.pt) from the shared media pool.
#   make default-model            (or: bash scripts/train_default_model.sh)
# About 45 minutes on 2 CPU cores; set DEVICE=cuda to train on a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
INIT=${INIT:-../shared/weights/mobilenet_v2_imagenet.pth}
OUT=${OUT:-runs}
DEVICE=${DEVICE:-auto}
FL=${FL:-.venv/bin/fakelens}

# Validation groups: the groups of the bundled examples (so the demo never shows training media) and
# the two Celeb-DF clips; 20% of the other groups by a seeded hash. No group is on both sides.
VAL_GROUPS="ffpp:004+982,dfdc:aayrffkzxn,ffpp:000+003,celebdf:bluebytematrix-real,celebdf:bluebytematrix-fake"

$FL preprocess "$DATA" --dataset list --val-fraction 0.2 --val-groups "$VAL_GROUPS" \
  --frames 32 --balance frames --detection-size 640 --min-face-size 40 --workers 2 --out "$OUT/pool"

# Stage 1: the first epoch of an 8-epoch schedule, head only on the frozen ImageNet backbone.
$FL train --manifest "$OUT/pool/manifest.csv" --out "$OUT/default-stage1" --init "$INIT" \
  --fakes both --epochs 8 --stop-after 1 --batch-size 32 --lr 3e-4 --freeze-backbone-epochs 1 \
  --patience 4 --seed 0 --workers 1 --device "$DEVICE"

# Stage 2: fine-tune all layers (backbone at 1/10 of the head's LR), 640 draws per epoch, best val AUC kept.
$FL train --manifest "$OUT/pool/manifest.csv" --out "$OUT/default" --init "$OUT/default-stage1/best.pt" \
  --fakes both --epochs 7 --samples-per-epoch 640 --batch-size 32 --lr 3e-4 --freeze-backbone-epochs 0 \
  --patience 3 --seed 0 --workers 1 --device "$DEVICE"

$FL evaluate --manifest "$OUT/pool/manifest.csv" --checkpoint "$OUT/default/best.pt" --split val --out "$OUT/default/eval-val"
.venv/bin/python scripts/package_model.py "$OUT/default/best.pt" --eval "$OUT/default/eval-val/report.json"
