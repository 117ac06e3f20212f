#!/usr/bin/env bash
# The GPU recipe of the SBI-only model: the same data and schedule shape as scripts/train_sbi.sh, with a
# larger budget, AMP (bf16 where supported) and channels-last (both on by default on CUDA), batch 256, one
# loader worker per spare core, fakelens-default-v4's tight face-crop augmentation (--tight-crop-p 0.25), and v6's
# mix of photos and real-video frames with compression in the loop (--codec-p 0.5; every epoch kept, so that
# scripts/select_v6.py --arm gpu=runs/sbi-gpu chooses on the dev pool's selection half, never on val AUC).
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
# v6's mix: frames of the real videos beside the photos (scripts/train_v6.sh), unless MANIFEST says otherwise.
[ -f runs/realvid/manifest.csv ] || $FL preprocess ../shared/data --dataset list --list runs/real_video_pool.csv \
  --val-fraction 0.1 --seed 0 --frames 16 --detection-size 640 --min-face-size 40 --workers "$WORKERS" --out runs/realvid
[ -f runs/mix/manifest.csv ] || .venv/bin/python scripts/mix_manifest.py runs/mix/manifest.csv runs/faces/manifest.csv runs/realvid/manifest.csv:2
MANIFEST=${MANIFEST:-runs/mix/manifest.csv}
if [ -f "$OUT/last.pt" ]; then
  $FL train --out "$OUT" --resume --device cuda --workers "$WORKERS"
else
  $FL train --manifest "$MANIFEST" --out "$OUT" --init "$INIT" --fakes sbi --codec-p "${CODEC_P:-0.5}" --keep-epochs \
    --epochs "$EPOCHS" --samples-per-epoch 40000 --batch-size 256 --lr 1e-3 --backbone-lr-mult 0.33 \
    --warmup-epochs 0.5 --freeze-backbone-epochs 0 --patience 0 --seed 0 --tight-crop-p 0.25 --device cuda --workers "$WORKERS"
fi
