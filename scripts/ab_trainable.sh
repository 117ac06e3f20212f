#!/usr/bin/env bash
# Which layers to train on a CPU, by validation AUC per CPU-hour (#10). Three SBI-only runs from the same
# ImageNet initialisation and seed on the face pool, each sized to about 12 minutes of one busy core
# (measured: 11.5, 12.5 and 8.7 minutes beside two other training runs; docs/results/ab_trainable.md):
#   all      every layer (backbone at a third of the head's LR)              3,400 images
#   freeze7  the first 7 blocks frozen, no backward through them             5,600 images
#   norm     BlenD: only the backbone's batch norm weights/biases + the head 3,200 images (backbone LR = head LR)
# Validation: face-pool val identities against a fixed self-blended copy of each (830 items), never the dev pool.
#   bash scripts/ab_trainable.sh && python scripts/ab_table.py runs/ab-all runs/ab-freeze7 runs/ab-norm
set -euo pipefail
cd "$(dirname "$0")/.."
FL=${FL:-.venv/bin/fakelens}
INIT=${INIT:-../shared/weights/mobilenet_v2_imagenet.pth}
COMMON=(--manifest runs/faces/manifest.csv --init "$INIT" --fakes sbi --batch-size 32 --lr 3e-4 --epochs 1
        --warmup-epochs 0.1 --freeze-backbone-epochs 0 --patience 0 --seed 0 --workers 1 --threads 1 --no-progress)
run() {  # name, images, extra options
  local out=runs/ab-$1 n=$2; shift 2
  if [ -f "$out/last.pt" ]; then  # finished (a finished run resumes to a no-op)
    $FL train --out "$out" --resume --workers 1 --threads 1 --no-progress
  else  # a killed run has no last.pt yet: its one epoch starts again
    $FL train --out "$out" "${COMMON[@]}" --samples-per-epoch "$n" "$@"
  fi
}
run all 3400 --backbone-lr-mult 0.33
run freeze7 5600 --backbone-lr-mult 0.33 --freeze-blocks 7
run norm 3200 --backbone-lr-mult 1.0 --backbone-params norm
