#!/usr/bin/env bash
# Reproduces the bundled default model fakelens-default-v6 (src/fakelens/weights/default.pt) from ../shared.
#   make default-model            (or: bash scripts/train_default_model.sh)
# SBI-only: it trains on the real face photographs of ../shared/data/faces/ and their self-blended
# pseudo-fakes, never on a deepfake; every labelled medium of the dev pool is then a test item.
# About 6 hours on 2 CPU cores: stages 1-2 (scripts/train_sbi.sh, 87 min: v2), stage 3
# (scripts/train_sbi_stage3.sh, 80 min: v3), stage 4 (scripts/train_sbi_stage4.sh, 72 min: v4, with
# tight face-crop augmentation), stage 5 (scripts/train_sbi_stage5.sh paper, 102 min: v5; its `strong` arm
# was the colour A/B and is not needed) and v6 (scripts/train_v6.sh: photos + real-video frames, with and without
# compression in the loop, two arms of ~70 min side by side, chosen on the dev pool's selection half by
# scripts/select_v6.py); scripts/train_gpu.sh is the GPU recipe.
# Every step resumes where it stopped when the script is run again.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
FL=${FL:-.venv/bin/fakelens}
PY=${PY:-.venv/bin/python}
export FL

$PY scripts/pool_lists.py "$DATA" runs
# The face pool: one crop per photo through the same padded-canvas detection as `predict`; 5% of the
# identities validate (checkpoint and threshold are chosen there, on REAL vs fixed SBI fakes).
$FL preprocess "$DATA" --dataset list --list runs/face_pool.csv --val-fraction 0.05 --seed 0 \
  --frames 1 --min-face-size 20 --workers 2 --out runs/faces
bash scripts/train_sbi.sh
bash scripts/train_sbi_stage3.sh
bash scripts/train_sbi_stage4.sh
INIT5=runs/sbi-stage4/best.pt bash scripts/train_sbi_stage5.sh paper
# The dev pool (test only): 16 frames per video, detection at 640 px.
$FL preprocess "$DATA" --dataset list --list runs/dev_pool.csv --frames 16 --detection-size 640 \
  --min-face-size 40 --workers 2 --out runs/devpool
$PY scripts/package_model.py runs/sbi-stage5-paper/best.pt --name fakelens-default-v5 --calibrate runs/faces/manifest.csv
cp src/fakelens/weights/default.pt runs/v5.pt
# v6: frames of real videos (16 per clip, detected as predict does) beside the photos; the two arms side by side.
$FL preprocess "$DATA" --dataset list --list runs/real_video_pool.csv --val-fraction 0.1 --seed 0 \
  --frames 16 --detection-size 640 --min-face-size 40 --workers 2 --out runs/realvid
INIT6=runs/v5.pt bash scripts/train_v6.sh video & INIT6=runs/v5.pt bash scripts/train_v6.sh video_codec & wait
$PY scripts/select_v6.py --manifest runs/devpool/manifest.csv --half selection --model v5=runs/v5.pt \
  --arm video=runs/v6-video --arm video_codec=runs/v6-video_codec --out runs/selection_v6
$PY scripts/package_model.py runs/v6_winner.pt --name fakelens-default-v6
$PY scripts/report_v6.py --manifest runs/devpool/manifest.csv --out runs/report_v6 \
  --model v5=runs/v5.pt --model v6=src/fakelens/weights/default.pt
