#!/usr/bin/env bash
# Stage 3 of the SBI-only training (fakelens-default-v3 candidate): a longer single run that continues
# stage 2's best weights on fresh draws (seed 1, so no pair repeats stage 2's), 5 epochs x 4,800 images
# with a warm restart of the cosine schedule at 2/3 of stage 2's peak LR, the first 7 blocks frozen as in
# stage 2 (7.7 img/s against 3.3 img/s for all layers on the busy 2 cores). About 60-80 minutes on 2 busy
# CPU cores. Run it from a frozen copy of the code (PYTHONPATH=<copy>/src) when you edit the tree meanwhile:
# DataLoader workers import modules lazily, and a half-edited tree once killed a run at its first validation.
#   bash scripts/train_sbi_stage3.sh       # starts, or resumes after an interruption
set -euo pipefail
cd "$(dirname "$0")/.."
FL=${FL:-.venv/bin/fakelens}
OUT=${OUT:-runs/sbi}
INIT=${INIT3:-$OUT-stage2/best.pt}
WORKERS=${WORKERS:-2}
THREADS=${THREADS:-1}
RUN=(--device "${DEVICE:-auto}" --workers "$WORKERS" --threads "$THREADS" --no-progress)
if [ -f "$OUT-stage3/last.pt" ]; then
  $FL train --out "$OUT-stage3" --resume "${RUN[@]}"
else
  $FL train --manifest runs/faces/manifest.csv --out "$OUT-stage3" --init "$INIT" --fakes sbi --batch-size 32 \
    --lr 2e-4 --backbone-lr-mult 0.33 --freeze-backbone-epochs 0 --patience 0 --seed 1 \
    --epochs 5 --samples-per-epoch 4800 --warmup-epochs 0.1 --freeze-blocks 7 "${RUN[@]}"
fi
