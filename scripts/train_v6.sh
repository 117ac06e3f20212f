#!/usr/bin/env bash
# fakelens-default-v6 (#28): fakelens-default-v5 continued on a mix of the face pool's photos and frames of real
# videos (../shared/data/videos/real-extra/: 16 frames per clip, one group per person), with and without
# compression in the loop, in two arms that run side by side, one core and one torch thread each, `nice`d:
#   video       photos + real-video frames (the video frames' train rows listed twice: ~30 % of the draws)
#   video_codec the same, and half of the training images (each real crop and its pseudo-fake alike) re-encoded
#               as an H.264/HEVC intra frame at CRF 18-40 and 0.5-1x size (--codec-p 0.5)
# Each arm: 8 epochs x 5,000 images from v5's weights (seed 6), tight face-crop augmentation at p 0.25, the
# first 7 blocks frozen, a warm-restarted cosine from 1e-4 to 1 %, every epoch's weights kept (epoch-NN.pt).
# The photos-only arm of the ablation is v4 -> v5 (stage 5: 102 CPU-minutes of photos-only SBI from v4), scored on
# the same selection half: it is the same recipe without the video frames, and rerunning it would take a third
# core this machine does not have.
# Run it from a frozen copy of the code (PYTHONPATH=<copy>/src) when you edit the tree meanwhile.
#   bash scripts/train_v6.sh video & bash scripts/train_v6.sh video_codec &     # start, or resume
#
# THE RULE, fixed and committed before either arm ran (scripts/select_v6.py carries it out):
#   * Every choice is made on the *selection* half of the dev pool (docs/results/dev_pool_halves.csv: real
#     deepfakes and their reals, split by leakage group; 134 media, 35 of them videos), never on the report
#     half, and never on pseudo-fake validation AUC (printed as a sanity check only).
#   * The score of a candidate is M = mean(video AUC clean, video AUC under half size + H.264 CRF 35) over all
#     134 selection media (a still image counts as a one-frame video), frame scores averaged per medium.
#   * Candidates: every kept epoch of each arm; each arm's uniform soup of its last 4 epochs; a greedy soup per
#     arm (epochs added best-first while M does not drop); each with and without horizontal-flip TTA. v5 (and v4,
#     photos only) are scored alike for the ablation.
#   * The candidate with the highest M becomes fakelens-default-v6 only if it beats v5's M by at least 0.01;
#     otherwise v5 stays the default. Flip TTA is kept only if it adds at least 0.005 to M (it doubles the cost).
#   * The frame aggregation (mean or the DFDC winner's "confident"), the temperature and the decision threshold
#     (balanced accuracy over the selection media's video scores) are then fitted on the selection half.
#   * The report half is scored once, after the choice, for every model alike (v4, v5, v6).
set -euo pipefail
cd "$(dirname "$0")/.."
ARM=${1:?usage: train_v6.sh video|video_codec}
FL=${FL:-.venv/bin/fakelens}
OUT=${OUT:-runs/v6}-$ARM
INIT=${INIT6:-src/fakelens/weights/default.pt}
RUN=(--device "${DEVICE:-auto}" --workers "${WORKERS:-1}" --threads "${THREADS:-1}" --no-progress)
case "$ARM" in
  video) CODEC=0 ;;
  video_codec) CODEC=0.5 ;;
  *) echo "unknown arm $ARM" >&2; exit 2 ;;
esac
[ -f runs/mix/manifest.csv ] || .venv/bin/python scripts/mix_manifest.py runs/mix/manifest.csv runs/faces/manifest.csv runs/realvid/manifest.csv:2
if [ -f "$OUT/last.pt" ]; then
  $FL train --out "$OUT" --resume "${RUN[@]}"
else
  $FL train --manifest runs/mix/manifest.csv --out "$OUT" --init "$INIT" --fakes sbi --batch-size 32 \
    --lr 1e-4 --backbone-lr-mult 0.33 --freeze-backbone-epochs 0 --patience 0 --seed 6 \
    --epochs "${EPOCHS:-8}" --samples-per-epoch "${SAMPLES:-5000}" --warmup-epochs 0.1 --freeze-blocks 7 --tight-crop-p 0.25 \
    --codec-p "$CODEC" --keep-epochs "${RUN[@]}"
fi
