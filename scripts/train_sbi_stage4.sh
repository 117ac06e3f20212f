#!/usr/bin/env bash
# Stage 4 of the SBI-only training (fakelens-default-v4 candidate): v3's weights on fresh draws (seed 2) with
# a quarter of the training images shown as `predict` sees a user's tight face-crop clip (--tight-crop-p:
# the face box alone, mirror-filled back to the crop's margin, half of them soft), the one perturbation
# that cost v3 most (video AUC 0.69 against 0.82 clean). 10 epochs x 4,800 images, a warm-restarted cosine
# at half of stage 3's peak, the first 7 blocks frozen as in stages 2-3. About 95 minutes on 2 cores (8.8 img/s measured in its first epoch).
# Run it from a frozen copy of the code (PYTHONPATH=<copy>/src) when you edit the tree meanwhile.
#   bash scripts/train_sbi_stage4.sh       # starts, or resumes after an interruption
set -euo pipefail
cd "$(dirname "$0")/.."
FL=${FL:-.venv/bin/fakelens}
OUT=${OUT:-runs/sbi}
INIT=${INIT4:-$OUT-stage3/best.pt}
WORKERS=${WORKERS:-2}
THREADS=${THREADS:-1}
RUN=(--device "${DEVICE:-auto}" --workers "$WORKERS" --threads "$THREADS" --no-progress)
if [ -f "$OUT-stage4/last.pt" ]; then
  $FL train --out "$OUT-stage4" --resume "${RUN[@]}"
else
  $FL train --manifest runs/faces/manifest.csv --out "$OUT-stage4" --init "$INIT" --fakes sbi --batch-size 32 \
    --lr 1e-4 --backbone-lr-mult 0.33 --freeze-backbone-epochs 0 --patience 0 --seed 2 \
    --epochs 10 --samples-per-epoch 4800 --warmup-epochs 0.1 --freeze-blocks 7 --tight-crop-p 0.25 "${RUN[@]}"
fi
