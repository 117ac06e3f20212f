#!/usr/bin/env bash
# Stage 5 of the SBI-only training and the colour A/B of #10 at a real budget: the bundled v4 continued on fresh
# draws (seed 3) in two arms that differ only in the source's colour change (--sbi-colour): `paper` (the reference
# code's subtle change, what v2-v4 trained with) and `strong` (the first release's: RGB shift always, hue +-10
# degrees, saturation/value +-30%). Each arm: 10 epochs x 7,000 images (70,000 images), tight face-crop
# augmentation at p 0.25, the first 7 blocks frozen, a warm-restarted cosine from 1e-4 to 1%. The two arms run side
# by side, one core and one torch thread each, `nice`d: each is a >= 90-minute run on the 2-core machine.
# Run it from a frozen copy of the code (PYTHONPATH=<copy>/src) when you edit the tree meanwhile.
#   bash scripts/train_sbi_stage5.sh paper & bash scripts/train_sbi_stage5.sh strong &   # start, or resume
# Then: scripts/val_auc.py (selection split, paper and strong fixed fakes, clean and tight crop) chooses.
set -euo pipefail
cd "$(dirname "$0")/.."
ARM=${1:?usage: train_sbi_stage5.sh paper|strong}
FL=${FL:-.venv/bin/fakelens}
OUT=${OUT:-runs/sbi}-stage5-$ARM
INIT=${INIT5:-runs/v4.pt}
RUN=(--device "${DEVICE:-auto}" --workers "${WORKERS:-1}" --threads "${THREADS:-1}" --no-progress)
if [ -f "$OUT/last.pt" ]; then
  $FL train --out "$OUT" --resume "${RUN[@]}"
else
  $FL train --manifest runs/faces/manifest.csv --out "$OUT" --init "$INIT" --fakes sbi --batch-size 32 \
    --lr 1e-4 --backbone-lr-mult 0.33 --freeze-backbone-epochs 0 --patience 0 --seed 3 \
    --epochs 10 --samples-per-epoch "${SAMPLES:-7000}" --warmup-epochs 0.1 --freeze-blocks 7 --tight-crop-p 0.25 \
    --sbi-colour "$ARM" "${RUN[@]}"
fi
