#!/usr/bin/env bash
# SBI's mask, 5-point extrapolated hull (default) against hulls of the 468-point face mesh (#10), by AUC on real
# manipulations. Two SBI-only runs from the same ImageNet initialisation, seed and draws on the face pool, alike
# but for --sbi-mask (first 7 blocks frozen, 5,600 images: about 12 minutes of one busy core each). Each run's own
# validation uses its own kind of pseudo-fake, so the two val AUCs do not compare. The choice is made on a
# selection split fair to both: the face-pool val REALs against fixed pseudo-fakes of *both* masks
# (scripts/val_auc.py --sbi-mask five,dense); the dev pool's test split (real deepfakes, never trained on) is
# then reported for both, never used to choose. The dense run meshes the face pool once into
# runs/faces/manifest.csv.facemesh.npz (about 2-3 minutes for 8,300 crops on one core).
#   bash scripts/ab_sbi_mask.sh
set -euo pipefail
cd "$(dirname "$0")/.."
FL=${FL:-.venv/bin/fakelens}
PY=${PY:-.venv/bin/python}
INIT=${INIT:-../shared/weights/mobilenet_v2_imagenet.pth}
COMMON=(--manifest runs/faces/manifest.csv --init "$INIT" --fakes sbi --batch-size 32 --lr 3e-4 --epochs 1
        --samples-per-epoch 5600 --warmup-epochs 0.1 --freeze-backbone-epochs 0 --freeze-blocks 7
        --backbone-lr-mult 0.33 --patience 0 --seed 0 --workers 1 --threads 1 --no-progress)
for mask in five dense; do
  out=runs/ab-mask-$mask
  if [ -f "$out/last.pt" ]; then
    $FL train --out "$out" --resume --workers 1 --threads 1 --no-progress
  else
    $FL train --out "$out" "${COMMON[@]}" --sbi-mask "$mask"
  fi
done
$PY scripts/val_auc.py --manifest runs/faces/manifest.csv --sbi-mask five,dense \
  five=runs/ab-mask-five/best.pt dense=runs/ab-mask-dense/best.pt | tee runs/ab-mask-selection.md
$PY scripts/generalisation.py --manifest runs/devpool/manifest.csv --split test --perturbations none \
  --checkpoint five=runs/ab-mask-five/best.pt --checkpoint dense=runs/ab-mask-dense/best.pt --out runs/ab-mask
