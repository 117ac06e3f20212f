#!/usr/bin/env bash
# Reproduces the bundled default model fakelens-default-v5 (src/fakelens/weights/default.pt) from ../shared.
#   make default-model            (or: bash scripts/train_default_model.sh)
# SBI-only: it trains on the real face photographs of ../shared/data/faces/ and their self-blended
# pseudo-fakes, never on a deepfake; every labelled medium of the dev pool is then a test item.
# About 6 hours on 2 CPU cores: stages 1-2 (scripts/train_sbi.sh, 87 min: v2), stage 3
# (scripts/train_sbi_stage3.sh, 80 min: v3), stage 4 (scripts/train_sbi_stage4.sh, 72 min: v4, with
# tight face-crop augmentation) and stage 5 (scripts/train_sbi_stage5.sh paper, 102 min: v5; its `strong` arm
# was the colour A/B and is not needed); scripts/train_gpu.sh is the GPU recipe.
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
$PY scripts/generalisation.py --manifest runs/devpool/manifest.csv --split test \
  --checkpoint v5=src/fakelens/weights/default.pt --calibration-manifest runs/faces/manifest.csv \
  --cache runs/gen_cache --out runs/generalisation
