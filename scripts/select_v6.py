"""Choose fakelens-default-v6 on the selection half of the dev pool, by the rule in scripts/train_v6.sh.

    python scripts/select_v6.py --manifest runs/devpool/manifest.csv --half selection \
        --model v4=runs/v4.pt --model v5=src/fakelens/weights/default.pt \
        --arm video=runs/v6-video --arm video_codec=runs/v6-video_codec --out docs/results/selection_v6

Scores every candidate (each ``--model``; each kept epoch of each ``--arm``; each arm's uniform soup of its last
4 epochs and its greedy soup), with and without horizontal-flip test-time augmentation, on the half's media clean
and under half size + H.264 CRF 35 (:data:`fakelens.robustness.PERTURBATIONS`), and prints the table with
M = mean(clean video AUC, perturbed video AUC). The winner's weights are written to ``--winner``, with the
frame aggregation, temperature and threshold fitted on the same half (``OUT/selection.json``).

``--half report`` with ``--model`` only scores the named models on the report half (no choice is made there).
Torch threads: 1 while training shares the machine (``--threads``).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HALVES = ROOT / "docs" / "results" / "dev_pool_halves.csv"
PERTURBED = "half_h264_crf35"
SOUP_LAST = 4


def half_rows(manifest: Path, half: str):
    from fakelens.data import read_manifest

    with open(HALVES, newline="") as fh:
        side = {r["group"]: r["half"] for r in csv.DictReader(fh)}
    rows = [r for r in read_manifest(manifest, split=None) if side.get(r.group) == half]
    if not rows:
        raise SystemExit(f"no rows of {manifest} in the {half} half")
    return rows


def perturbed_crops(rows, crops, name: str, cache: Path | None) -> list:
    from fakelens import atomic
    from fakelens.mtcnn import MTCNN
    from fakelens.robustness import perturb_crops

    if cache is not None and cache.is_file():
        with np.load(cache) as data:
            return [c if ok else None for c, ok in zip(data["crops"], data["found"])]
    by_video = defaultdict(list)
    for i, row in enumerate(rows):
        by_video[row.video_key].append(i)
    out: list = [None] * len(rows)
    detector = MTCNN(min_face_size=20) if name == "tight_crop" else None
    for indices in by_video.values():
        for i, crop in zip(indices, perturb_crops(name, [crops[i] for i in indices], detector)):
            out[i] = crop
    if cache is not None:
        found = np.array([c is not None for c in out])
        stack = np.stack([c if c is not None else np.zeros_like(crops[0]) for c in out])
        with atomic.atomic_path(cache) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, crops=stack, found=found)
    return out


#: Feature blocks every candidate shares: v2 and all its descendants (v3-v6) trained with the first 7 blocks
#: frozen, so their outputs are computed once per crop set and the candidates run only from block 7 on.
SHARED_BLOCKS = 7
_PREFIX: dict = {}


def _prefix_key(model) -> str:
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        if name.startswith("features.") and int(name.split(".")[1]) < SHARED_BLOCKS:
            digest.update(name.encode() + tensor.cpu().numpy().tobytes())
    return digest.hexdigest()


def logits_of(model, crops: np.ndarray, flip: bool, batch_size: int = 64) -> np.ndarray:
    """Logits of uint8 crops (mirrored first with ``flip``). The frozen blocks' outputs are kept per crop set and
    per weights of those blocks, so candidates of one lineage run from block 7 on: the same numbers, half the work."""
    import torch

    from fakelens.model import preprocess_crops

    key = (_prefix_key(model), id(crops), flip)
    out = []
    with torch.inference_mode():
        if key not in _PREFIX:
            feats = []
            for start in range(0, len(crops), batch_size):
                batch = preprocess_crops(crops[start : start + batch_size])
                if flip:
                    batch = torch.flip(batch, dims=[3])
                feats.append(model.features[:SHARED_BLOCKS](batch))
            _PREFIX[key] = torch.cat(feats) if feats else None
        feats = _PREFIX[key]
        if feats is None:
            return np.zeros(0)
        for start in range(0, len(feats), batch_size):
            x = model.features[SHARED_BLOCKS:](feats[start : start + batch_size])
            out.append(model.head(model.pool(x)).squeeze(1).float().numpy())
    return np.concatenate(out)


def video_auc(rows, probs, strategy: str = "mean") -> float | None:
    from fakelens.metrics import aggregate_videos, roc_auc

    videos = aggregate_videos([r.video_key for r in rows], probs, [r.target for r in rows], strategy)
    return roc_auc(videos.labels, videos.scores)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class Scorer:
    """Logits of every candidate on the clean and perturbed crops, both orientations; M per candidate."""

    def __init__(self, rows, sets: dict[str, tuple[list, np.ndarray]]):
        self.rows, self.sets = rows, sets  # name -> (kept row indices, crops)
        self.logits: dict[str, dict] = {}

    def add(self, label: str, model, cache: Path | None = None) -> dict:
        """Score ``model`` as ``label``; with ``cache`` (a file keyed by the checkpoint's bytes), logits computed
        once are read back, so epochs scored while training runs are not scored again."""
        start = time.perf_counter()
        model.eval()
        entry = {}
        stored = dict(np.load(cache)) if cache is not None and cache.is_file() else {}
        for name, (keep, crops) in self.sets.items():
            if f"{name}/plain" in stored:
                plain, flipped = stored[f"{name}/plain"], stored[f"{name}/flipped"]
            else:
                plain, flipped = logits_of(model, crops, flip=False), logits_of(model, crops, flip=True)
                stored[f"{name}/plain"], stored[f"{name}/flipped"] = plain, flipped
            entry[name] = {"plain": plain, "flip": (plain + flipped) / 2.0, "keep": keep}
        if cache is not None and not cache.is_file():
            from fakelens import atomic

            with atomic.atomic_path(cache) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, **stored)
        self.logits[label] = entry
        row = self.summary(label)
        print(f"  {label}: M {row['M']:.4f} (clean {row['clean']:.4f}, {PERTURBED} {row['perturbed']:.4f}); "
              f"with flip M {row['M_flip']:.4f}  [{time.perf_counter() - start:.0f} s]", file=sys.stderr)  # fmt: skip
        return row

    def auc(self, label: str, name: str, tta: str, strategy: str = "mean") -> float:
        e = self.logits[label][name]
        return video_auc([self.rows[i] for i in e["keep"]], sigmoid(e[tta]), strategy) or 0.0

    def summary(self, label: str) -> dict:
        out = {}
        for tta, suffix in (("plain", ""), ("flip", "_flip")):
            clean, pert = self.auc(label, "none", tta), self.auc(label, PERTURBED, tta)
            out["clean" + suffix], out["perturbed" + suffix], out["M" + suffix] = clean, pert, (clean + pert) / 2.0
        return out


def average_states(paths: list[Path]):
    """The uniform average of the weights of ``paths`` (one lineage, one architecture), and the first payload."""
    from fakelens.checkpoint import load_checkpoint

    total, first = None, None
    for path in paths:
        payload = load_checkpoint(path)
        state = payload["model_state"]
        if total is None:
            first, total = payload, {k: v.detach().clone().double() if v.is_floating_point() else v.clone() for k, v in state.items()}
        else:
            for k, v in state.items():
                if v.is_floating_point():
                    total[k] += v.double()
    assert total is not None and first is not None
    return {k: (v / len(paths)).float() if v.is_floating_point() else v for k, v in total.items()}, first


def model_from_state(state: dict, payload: dict):
    from fakelens.model import DeepfakeClassifier

    model = DeepfakeClassifier(**payload.get("model_config", {}))
    model.load_state_dict(state)
    return model.eval()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, required=True, help="the dev pool's manifest (runs/devpool/manifest.csv)")
    parser.add_argument("--half", choices=["selection", "report"], default="selection")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH", help="a checkpoint to score (repeatable)")
    parser.add_argument("--arm", action="append", default=[], metavar="NAME=RUN", help="a training run with epoch-NN.pt files (repeatable)")
    parser.add_argument("--out", type=Path, required=True, help="folder for selection.json/.md")
    parser.add_argument("--winner", type=Path, default=ROOT / "runs" / "v6_winner.pt", help="where the winner's checkpoint goes")
    parser.add_argument("--cache", type=Path, default=ROOT / "runs" / "select_cache")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--score-only", action="store_true", help="score and cache the candidates there are, choose nothing")
    args = parser.parse_args(argv)
    import torch

    from fakelens import atomic
    from fakelens.checkpoint import load_checkpoint, load_model, save_checkpoint, sha256_file
    from fakelens.data import load_crop
    from fakelens.sysinfo import describe_machine

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    args.cache.mkdir(parents=True, exist_ok=True)
    rows = half_rows(args.manifest, args.half)
    media = {r.video_key for r in rows}
    crops = [load_crop(r)[0] for r in rows]
    sets = {}
    for name in ("none", PERTURBED):
        out = crops if name == "none" else perturbed_crops(rows, crops, name, args.cache / f"{args.half}_{name}.npz")
        keep = [i for i, c in enumerate(out) if c is not None]
        sets[name] = (keep, np.stack([out[i] for i in keep]))
    print(f"{args.half} half: {len(rows)} crops of {len(media)} media; {describe_machine()}", file=sys.stderr)
    scorer = Scorer(rows, sets)
    table: dict[str, dict] = {}

    def cached(path) -> Path:
        return args.cache / f"logits_{args.half}_{sha256_file(path)[:16]}.npz"

    for spec in args.model:
        label, _, path = spec.partition("=")
        table[label] = {"source": path, **scorer.add(label, load_model(path, device="cpu")[0], cached(path))}
    states: dict[str, tuple] = {}
    for spec in args.arm:
        arm, _, run = spec.partition("=")
        epochs = sorted(Path(run).glob("epoch-*.pt"))
        if not epochs:
            raise SystemExit(f"{run}: no epoch-NN.pt (train with --keep-epochs)")
        for path in epochs:
            label = f"{arm}/{path.stem}"
            payload = load_checkpoint(path)
            states[label] = (payload["model_state"], payload, [path])
            table[label] = {"source": str(path), **scorer.add(label, model_from_state(payload["model_state"], payload), cached(path))}
        if args.score_only:
            continue
        last = epochs[-SOUP_LAST:]
        state, payload = average_states(last)
        label = f"{arm}/soup-last{len(last)}"
        states[label] = (state, payload, last)
        table[label] = {"source": ", ".join(p.name for p in last), **scorer.add(label, model_from_state(state, payload))}
        # Greedy soup: epochs best-first by M, each kept only if the soup's M does not drop.
        ranked = sorted(epochs, key=lambda p: -table[f"{arm}/{p.stem}"]["M"])
        chosen, best = [ranked[0]], table[f"{arm}/{ranked[0].stem}"]["M"]
        for path in ranked[1:]:
            state, payload = average_states(chosen + [path])
            trial = f"{arm}/greedy-trial"
            m = scorer.add(trial, model_from_state(state, payload))["M"]
            del scorer.logits[trial]
            if m >= best:
                chosen, best = chosen + [path], m
        state, payload = average_states(chosen)
        label = f"{arm}/soup-greedy"
        states[label] = (state, payload, chosen)
        table[label] = {"source": ", ".join(p.name for p in chosen), **scorer.add(label, model_from_state(state, payload))}

    report = {"half": args.half, "manifest": str(args.manifest), "crops": len(rows), "media": len(media),
              "perturbed": PERTURBED, "machine": describe_machine(), "candidates": table}  # fmt: skip
    if args.arm and not args.score_only:
        baseline = table.get("v5", {}).get("M")
        label = max(states, key=lambda k: table[k]["M"])
        use_flip = table[label]["M_flip"] >= table[label]["M"] + 0.005
        winner = {"candidate": label, "M": table[label]["M"], "v5_M": baseline, "flip_tta": use_flip,
                  "ships": baseline is None or table[label]["M"] >= baseline + 0.01}  # fmt: skip
        # Aggregation, temperature and threshold: fitted on this half, for the winner as it would ship.
        from fakelens.calibration import expected_calibration_error, fit_temperature
        from fakelens.metrics import aggregate_videos, best_threshold

        tta = "flip" if use_flip else "plain"
        strategies = {s: scorer.auc(label, "none", tta, s) for s in ("mean", "confident")}
        strategy = "confident" if strategies["confident"] >= strategies["mean"] + 0.005 else "mean"
        e = scorer.logits[label]["none"]
        kept = [rows[i] for i in e["keep"]]
        targets = np.array([r.target for r in kept])
        temperature = fit_temperature(e[tta], targets)
        probs = sigmoid(e[tta] / temperature)
        videos = aggregate_videos([r.video_key for r in kept], probs, targets, strategy)
        threshold = best_threshold(videos.labels, videos.scores, "balanced_accuracy")
        winner.update({
            "aggregation": strategy, "aggregation_auc": strategies, "temperature": temperature,
            "ece_frames_before": expected_calibration_error(sigmoid(e[tta]), targets),
            "ece_frames_after": expected_calibration_error(probs, targets),
            "threshold": threshold, "threshold_fitted_on": f"{args.half} half: {len(media)} media, balanced accuracy of video scores",
            "sources": [str(p) for p in states[label][2]],
        })  # fmt: skip
        report["winner"] = winner
        state, payload, _ = states[label]
        from fakelens.calibration import fold_temperature

        shipped = model_from_state(state, payload)
        fold_temperature(shipped, temperature)  # P(fake) calibrated; the threshold above is on calibrated scores
        winner["calibration"] = {"temperature": temperature, "fitted_on": winner["threshold_fitted_on"],
                                 "ece_frames_before": winner["ece_frames_before"], "ece_frames_after": winner["ece_frames_after"]}  # fmt: skip
        inference = {"tta": "flip" if use_flip else "none", "aggregate": strategy}
        save_checkpoint(args.winner, shipped, epoch=payload.get("epoch", 0), config=payload.get("config"),
                        metrics={"selection": winner}, threshold=threshold, extra={"inference": inference}, name=label)  # fmt: skip
        print(json.dumps(winner, indent=2), file=sys.stderr)
    atomic.write_bytes(args.out / f"{args.half}.json", json.dumps(report, indent=2, default=float))
    lines = [
        f"{args.half} half of `{args.manifest}`: {len(rows)} crops of {len(media)} media; M = mean(clean, {PERTURBED}) video AUC.",
        "",
        "| candidate | clean | perturbed | **M** | clean, flip TTA | perturbed, flip | M, flip |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in table.items():
        cells = [f"{r[k]:.3f}" for k in ("clean", "perturbed")] + [f"**{r['M']:.3f}**"]
        cells += [f"{r[k]:.3f}" for k in ("clean_flip", "perturbed_flip", "M_flip")]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    atomic.write_bytes(args.out / f"{args.half}.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
