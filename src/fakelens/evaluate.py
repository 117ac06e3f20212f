"""Evaluation of a trained classifier on a manifest split: the field's metrics at frame and video level.

:func:`evaluate` scores every crop of a split, aggregates frames per video (``mean`` or the DFDC winner's
``confident`` strategy) and reports AUC, AP, EER and accuracy/precision/recall/F1 + confusion matrix at the
checkpoint's **validation** threshold (never one chosen on the evaluated split), overall, per dataset and
per manipulation method, each with the number of frames and videos behind it.

Per-method figures compare that method's fakes with the REAL crops of the dataset(s) the method occurs in,
as FaceForensics++ papers report per-method AUC (each manipulation against the shared originals).

:func:`write_report` writes ``report.json`` and ``predictions.csv`` atomically, and PNG plots (ROC, PR,
score histograms of REAL vs FAKE, frame and video level). :func:`predict_manifest` and
:func:`predict_crops` score crops for anyone else (Detector, Grad-CAM galleries).
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fakelens import atomic
from fakelens.constants import sigmoid
from fakelens.data import CropDataset, ManifestError, ManifestRow, collate, normalize_batch, read_manifest, worker_init
from fakelens.device import resolve_device
from fakelens.metrics import AGGREGATIONS, BinaryMetrics, aggregate_videos, binary_metrics, json_safe

log = logging.getLogger(__name__)


def _autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast(device.type, enabled=False)


@torch.inference_mode()
def score_dataset(
    model: nn.Module,
    dataset: CropDataset,
    indices: Sequence[int] | None = None,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    workers: int = 0,
    amp: bool = True,
    channels_last: bool | None = None,
    progress: bool = True,
    desc: str = "scoring",
) -> np.ndarray:
    """Logits (float64) of ``dataset`` items ``indices`` (default all), in that order. The model is put in eval mode.

    ``amp`` (default True) and ``channels_last`` (default: on CUDA) only act on CUDA.
    """
    from tqdm import tqdm

    device = torch.device(device)
    channels_last = device.type == "cuda" if channels_last is None else channels_last
    indices = list(range(len(dataset))) if indices is None else list(indices)
    if not indices:
        return np.zeros(0, dtype=np.float64)
    model.eval()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(dataset, indices),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate,
        worker_init_fn=worker_init if workers else None,
        pin_memory=device.type == "cuda",
        # Its own generator, so scoring never draws from the global RNG (training resumes depend on it).
        generator=torch.Generator(),
    )
    out = np.empty(len(indices), dtype=np.float64)
    done = 0
    start = time.perf_counter()
    with tqdm(total=len(indices), desc=desc, unit="img", disable=not progress, leave=False) as bar:
        for images, _, _ in loader:
            x = normalize_batch(images.to(device, non_blocking=True), channels_last)
            with _autocast(device, amp):
                logits = model(x)
            out[done : done + len(images)] = logits.float().cpu().numpy()
            done += len(images)
            bar.update(len(images))
            bar.set_postfix(img_s=f"{done / max(time.perf_counter() - start, 1e-9):.1f}")
    return out


def predict_manifest(
    model: nn.Module,
    rows: Sequence[ManifestRow],
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    workers: int = 0,
    progress: bool = True,
) -> np.ndarray:
    """P(fake) of every manifest row's crop (no augmentation), as a float64 array in row order."""
    dataset = CropDataset(rows)
    return sigmoid(score_dataset(model, dataset, batch_size=batch_size, device=device, workers=workers, progress=progress))


@torch.inference_mode()
def predict_crops(model: nn.Module, crops: np.ndarray | Sequence[np.ndarray], batch_size: int = 64, device: str | torch.device = "cpu") -> np.ndarray:
    """P(fake) of (N, 224, 224, 3) uint8 RGB crops (or a list of them), as float64 (N,)."""
    from fakelens.model import preprocess_crops

    crops = list(crops) if not isinstance(crops, np.ndarray) else crops
    if len(crops) == 0:
        return np.zeros(0, dtype=np.float64)
    device = torch.device(device)
    model.eval()
    out = []
    for start in range(0, len(crops), batch_size):
        batch = preprocess_crops(crops[start : start + batch_size]).to(device)
        out.append(model(batch).float().cpu().numpy())
    return sigmoid(np.concatenate(out))


# --------------------------------------------------------------------------- reports


@dataclass
class SubsetReport:
    """Frame- and video-level metrics of one subset (everything, one dataset or one method)."""

    n_frames: int
    n_videos: int
    frame: BinaryMetrics
    video: BinaryMetrics

    def to_dict(self) -> dict:
        return {"n_frames": self.n_frames, "n_videos": self.n_videos, "frame": self.frame.to_dict(), "video": self.video.to_dict()}


@dataclass
class EvaluationReport:
    """Everything :func:`evaluate` measured; ``frame_scores`` are per manifest row, in row order."""

    checkpoint: str
    model_name: str
    manifest: str
    split: str
    threshold: float
    threshold_source: str
    aggregate: str
    overall: SubsetReport
    per_dataset: dict[str, SubsetReport] = field(default_factory=dict)
    per_method: dict[str, SubsetReport] = field(default_factory=dict)
    seconds: float = 0.0
    #: How ``split`` was chosen: ``"given"``, or the default's reason when no split was asked for.
    split_source: str = "given"
    rows: list[ManifestRow] = field(default_factory=list, repr=False)
    frame_scores: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def to_dict(self) -> dict:
        return json_safe(
            {
                "checkpoint": self.checkpoint,
                "model_name": self.model_name,
                "manifest": self.manifest,
                "split": self.split,
                "split_source": self.split_source,
                "threshold": self.threshold,
                "threshold_source": self.threshold_source,
                "aggregate": self.aggregate,
                "overall": self.overall.to_dict(),
                "per_dataset": {k: v.to_dict() for k, v in self.per_dataset.items()},
                "per_method": {k: v.to_dict() for k, v in self.per_method.items()},
                "seconds": self.seconds,
            }
        )


def subset_report(rows: Sequence[ManifestRow], scores: np.ndarray, threshold: float, aggregate: str = "mean") -> SubsetReport:
    """Frame and video metrics of these rows and their P(fake) scores."""
    labels = np.array([r.target for r in rows], dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    videos = aggregate_videos([r.video_key for r in rows], scores, labels, aggregate)
    return SubsetReport(
        n_frames=len(rows),
        n_videos=len(videos.videos),
        frame=binary_metrics(labels, scores, threshold),
        video=binary_metrics(videos.labels, videos.scores, threshold),
    )


def breakdowns(
    rows: Sequence[ManifestRow], scores: np.ndarray, threshold: float, aggregate: str = "mean"
) -> tuple[dict[str, SubsetReport], dict[str, SubsetReport]]:
    """Per-dataset reports, and per-method reports (method fakes vs the REAL crops of the datasets it occurs in)."""
    scores = np.asarray(scores)
    per_dataset = {}
    for name in sorted({r.dataset or "(unknown)" for r in rows}):
        idx = [i for i, r in enumerate(rows) if (r.dataset or "(unknown)") == name]
        per_dataset[name] = subset_report([rows[i] for i in idx], scores[idx], threshold, aggregate)
    per_method = {}
    methods = sorted({r.method or "(unknown)" for r in rows if r.label == "fake"})
    for method in methods:
        fake_idx = [i for i, r in enumerate(rows) if r.label == "fake" and (r.method or "(unknown)") == method]
        datasets = {rows[i].dataset for i in fake_idx}
        real_idx = [i for i, r in enumerate(rows) if r.label == "real" and r.dataset in datasets]
        idx = real_idx + fake_idx
        per_method[method] = subset_report([rows[i] for i in idx], scores[idx], threshold, aggregate)
    return per_dataset, per_method


#: The splits evaluation falls back on, in order, when none is asked for.
DEFAULT_SPLITS = ("test", "val")


def select_rows(manifest: str | Path, split: str | None = None) -> tuple[list[ManifestRow], str, str]:
    """The labelled rows of ``split`` (``"all"``: every split), that split and how it was chosen.

    With ``split=None`` the first of :data:`DEFAULT_SPLITS` with labelled rows is used: ``test``, or
    ``val`` for a manifest without a test split (``fakelens preprocess --dataset folder`` makes none by
    default). Raises :class:`~fakelens.data.ManifestError` when the selection is empty.
    """
    if split is not None:
        rows = read_manifest(manifest, split=None if split == "all" else split)
        if not rows:
            raise ManifestError(f"{manifest}: no labelled rows to evaluate")
        return rows, split, "given"
    rows = read_manifest(manifest)
    present = {r.split for r in rows}
    for index, name in enumerate(DEFAULT_SPLITS):
        if name in present:
            skipped = ", ".join(DEFAULT_SPLITS[:index])
            source = f"default: no labelled {skipped} rows" if skipped else "default"
            return [r for r in rows if r.split == name], name, source
    raise ManifestError(
        f"{manifest}: no labelled rows in split {' or '.join(DEFAULT_SPLITS)}; choose one with --split "
        f"(found: {', '.join(sorted(s for s in present if s)) or 'none'})"
    )


def evaluate(
    manifest: str | Path,
    checkpoint: str | Path,
    split: str | None = None,
    aggregate: str = "mean",
    batch_size: int = 64,
    device: str | torch.device = "auto",
    workers: int = 0,
    threshold: float | None = None,
    progress: bool = True,
) -> EvaluationReport:
    """Score ``split`` of ``manifest`` with ``checkpoint`` and measure it.

    Parameters
    ----------
    manifest : manifest CSV.
    checkpoint : fakelens checkpoint (``best.pt`` of a run).
    split : which split to evaluate, or ``"all"`` for every row (default None: ``"test"``, or ``"val"`` when
        the manifest has no test rows; the report's ``split`` and ``split_source`` say which).
    aggregate : video aggregation, ``"mean"`` (default) or ``"confident"``.
    batch_size : crops per forward pass (default 64).
    device : ``"auto"`` (default: CUDA if available), ``"cpu"``, ``"cuda:0"``, ...
    workers : DataLoader worker processes (default 0: load in this process).
    threshold : override of the decision threshold (default None: the checkpoint's validation threshold).
    progress : show a progress bar (default True).
    """
    from fakelens.checkpoint import load_model

    if aggregate not in AGGREGATIONS:
        raise ValueError(f"aggregate must be one of {AGGREGATIONS}, not {aggregate!r}")
    start = time.perf_counter()
    rows, split, split_source = select_rows(manifest, split)
    device = resolve_device(device)
    model, info = load_model(checkpoint, device=device)
    if threshold is None:
        threshold, source = float(info["threshold"]), "checkpoint (chosen on validation)"
    else:
        source = "given"
    scores = predict_manifest(model, rows, batch_size=batch_size, device=device, workers=workers, progress=progress)
    overall = subset_report(rows, scores, threshold, aggregate)
    per_dataset, per_method = breakdowns(rows, scores, threshold, aggregate)
    return EvaluationReport(
        checkpoint=str(checkpoint),
        model_name=str(info["name"]),
        manifest=str(manifest),
        split=split,
        threshold=float(threshold),
        threshold_source=source,
        aggregate=aggregate,
        overall=overall,
        per_dataset=per_dataset,
        per_method=per_method,
        seconds=time.perf_counter() - start,
        split_source=split_source,
        rows=rows,
        frame_scores=scores,
    )


def _atomic_savefig(fig, path: Path) -> None:
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def plot_curves(labels: np.ndarray, scores: np.ndarray, threshold: float, title: str, prefix: Path) -> list[Path]:
    """``{prefix}_roc.png``, ``{prefix}_pr.png`` and ``{prefix}_hist.png``; ROC/PR only with both classes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fakelens.metrics import average_precision, precision_recall_curve, roc_auc, roc_curve

    written = []
    labels = np.asarray(labels)
    both = 0 < labels.sum() < labels.size
    if both:
        fpr, tpr, _ = roc_curve(labels, scores)
        fig, ax = plt.subplots(figsize=(4.2, 4))
        ax.plot(fpr, tpr, drawstyle="steps-post", label=f"AUC = {roc_auc(labels, scores):.3f}")
        ax.plot([0, 1], [0, 1], ls=":", c="grey")
        ax.set(xlabel="false positive rate (REAL called FAKE)", ylabel="true positive rate", title=f"ROC - {title}")
        ax.legend(loc="lower right")
        _atomic_savefig(fig, prefix.with_name(prefix.name + "_roc.png"))
        plt.close(fig)
        written.append(prefix.with_name(prefix.name + "_roc.png"))

        precision, recall, _ = precision_recall_curve(labels, scores)
        fig, ax = plt.subplots(figsize=(4.2, 4))
        ax.plot(np.r_[0, recall], np.r_[precision[0], precision], drawstyle="steps-pre", label=f"AP = {average_precision(labels, scores):.3f}")
        ax.axhline(labels.mean(), ls=":", c="grey", label="chance")
        ax.set(xlabel="recall (FAKE)", ylabel="precision (FAKE)", ylim=(0, 1.02), title=f"PR - {title}")
        ax.legend(loc="lower left")
        _atomic_savefig(fig, prefix.with_name(prefix.name + "_pr.png"))
        plt.close(fig)
        written.append(prefix.with_name(prefix.name + "_pr.png"))

    fig, ax = plt.subplots(figsize=(5, 3.4))
    bins = np.linspace(0, 1, 26)
    ax.hist(scores[labels == 0], bins=bins, alpha=0.6, label=f"REAL (n={int((labels == 0).sum())})", color="tab:blue")
    ax.hist(scores[labels == 1], bins=bins, alpha=0.6, label=f"FAKE (n={int((labels == 1).sum())})", color="tab:red")
    ax.axvline(threshold, c="k", ls="--", label=f"threshold {threshold:.3f}")
    ax.set(xlabel="P(fake)", ylabel="count", title=f"scores - {title}")
    ax.legend()
    _atomic_savefig(fig, prefix.with_name(prefix.name + "_hist.png"))
    plt.close(fig)
    written.append(prefix.with_name(prefix.name + "_hist.png"))
    return written


def write_report(report: EvaluationReport, out_dir: str | Path, plots: bool = True) -> dict[str, Path]:
    """Write ``report.json``, ``predictions.csv`` and (default) frame/video ROC, PR and histogram PNGs."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"report": atomic.write_json(out_dir / "report.json", report.to_dict())}

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["crop_path", "video", "frame_index", "dataset", "method", "label", "score", "predicted"])
    for row, score in zip(report.rows, report.frame_scores):
        predicted = "fake" if score >= report.threshold else "real"
        writer.writerow([row.crop_path, row.video_key, row.frame_index, row.dataset, row.method, row.label, f"{score:.6f}", predicted])
    paths["predictions"] = atomic.write_bytes(out_dir / "predictions.csv", buffer.getvalue())

    if plots and report.rows:
        labels = np.array([r.target for r in report.rows])
        for path in plot_curves(labels, report.frame_scores, report.threshold, f"frames ({report.split})", out_dir / "frame"):
            paths[path.stem] = path
        videos = aggregate_videos([r.video_key for r in report.rows], report.frame_scores, labels, report.aggregate)
        title = f"videos, {report.aggregate} ({report.split})"
        for path in plot_curves(videos.labels, videos.scores, report.threshold, title, out_dir / "video"):
            paths[path.stem] = path
    return paths


def format_summary(report: EvaluationReport) -> str:
    """A few human-readable lines: overall figures, then one line per dataset and method."""

    def line(name: str, sub: SubsetReport) -> str:
        f, v = sub.frame, sub.video

        def fmt(x):
            return "  -  " if x is None else f"{x:.3f}"

        return (
            f"{name:<28} frames {sub.n_frames:>5} (AUC {fmt(f.auc)} AP {fmt(f.ap)} EER {fmt(f.eer)} acc {fmt(f.at_threshold.accuracy)})"
            f"  videos {sub.n_videos:>4} (AUC {fmt(v.auc)} acc {fmt(v.at_threshold.accuracy)})"
        )

    split = report.split if report.split_source == "given" else f"{report.split} [{report.split_source}]"
    out = [f"split {split}, threshold {report.threshold:.4f} [{report.threshold_source}], aggregate {report.aggregate}"]
    out.append(line("overall", report.overall))
    out += [line(f"dataset {k}", v) for k, v in report.per_dataset.items()]
    out += [line(f"method {k}", v) for k, v in report.per_method.items()]
    return "\n".join(out)


__all__ = [
    "EvaluationReport",
    "SubsetReport",
    "evaluate",
    "format_summary",
    "predict_crops",
    "predict_manifest",
    "score_dataset",
    "select_rows",
    "subset_report",
    "write_report",
]
