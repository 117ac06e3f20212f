#!/usr/bin/env bash
# The resumable SBI-only training of fakelens-default-v2 on the shared face pool, on CPU (2 cores);
# scripts/train_sbi_stage3.sh continues it into fakelens-default-v3.
#   bash scripts/train_sbi.sh      # starts, or resumes after an interruption (a killed job loses at most one epoch)
# Stage 1: the first epoch of a 10-epoch schedule (6,000 images = 3,000 real/pseudo-fake pairs), then stopped:
#   on this 2-core machine, busy with other jobs, training ran at 3-4.5 img/s, so the 10-epoch schedule
#   (60,000 images) would not fit; stage 2 re-plans the rest as its own shorter cosine schedule.
# Stage 2: 4 epochs x 5,000 images from stage 1's weights (AdamW restarted), annealed to 1% of the peak LR,
# with MobileNetV2's first 7 feature blocks (112-28 px) frozen: no backward through them, 2.3x faster here
# (3.3 -> 7.7 img/s on the busy machine, batch 32, one thread). Stage 1 trained all layers, the backbone at
# a third of the head's LR. Best epoch by val AUC (face-pool val identities vs a fixed self-blended copy of
# each). The GPU recipe is scripts/train_gpu.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
FL=${FL:-.venv/bin/fakelens}
OUT=${OUT:-runs/sbi}
INIT=${INIT:-../shared/weights/mobilenet_v2_imagenet.pth}
DEVICE=${DEVICE:-auto}
WORKERS=${WORKERS:-2}
# One torch thread: on 2 shared cores a 2-thread step waits for whichever thread shares its core.
THREADS=${THREADS:-1}
RUN=(--device "$DEVICE" --workers "$WORKERS" --threads "$THREADS" --no-progress)
COMMON=(--fakes sbi --batch-size 32 --lr 3e-4 --backbone-lr-mult 0.33 --freeze-backbone-epochs 0 --patience 0 --seed 0)

[ -f runs/faces/manifest.csv ] || {
  .venv/bin/python scripts/pool_lists.py ../shared/data runs
  $FL preprocess ../shared/data --dataset list --list runs/face_pool.csv --val-fraction 0.05 --seed 0 \
    --frames 1 --min-face-size 20 --workers "$WORKERS" --out runs/faces
}
if [ ! -f "$OUT/last.pt" ]; then
  $FL train --manifest runs/faces/manifest.csv --out "$OUT" --init "$INIT" "${COMMON[@]}" \
    --epochs 10 --samples-per-epoch 6000 --warmup-epochs 0.5 --stop-after 1 "${RUN[@]}"
fi
if [ -f "$OUT-stage2/last.pt" ]; then
  $FL train --out "$OUT-stage2" --resume "${RUN[@]}"
else
  $FL train --manifest runs/faces/manifest.csv --out "$OUT-stage2" --init "$OUT/last.pt" "${COMMON[@]}" \
    --epochs 4 --samples-per-epoch 5000 --warmup-epochs 0.1 --freeze-blocks 7 "${RUN[@]}"
fi
