"""What a training run reads from its manifest besides the crops, and what it writes beside its checkpoints.

* Items: a training or validation set is a list of ``(row index, kind)`` pairs over manifest rows, with
  kind ``"real"``, ``"fake"`` (a manifest FAKE crop) or ``"sbi"`` (a self-blended copy of a REAL crop,
  made on the fly by :class:`fakelens.data.CropDataset`); :func:`subset_rows` caps a split
  reproducibly and :func:`check_leakage` warns when a leakage group is in both train and val.
* The run folder: ``log.jsonl`` (:func:`write_log`) and ``loss.png`` / ``auc.png`` (:func:`plot_history`),
  rewritten whole after each epoch from the history kept in ``last.pt``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from fakelens import atomic
from fakelens.data import ManifestRow, atomic_write_text

log = logging.getLogger(__name__)


def build_train_items(rows: list[ManifestRow], fakes: str) -> list[tuple[int, str]]:
    """Dataset items for training: REAL crops, plus manifest FAKE crops and/or an SBI copy of each REAL crop."""
    items = []
    for i, row in enumerate(rows):
        if row.label == "real":
            items.append((i, "real"))
            if fakes in ("sbi", "both"):
                items.append((i, "sbi"))
        elif fakes in ("dataset", "both"):
            items.append((i, "fake"))
    return items


def build_val_items(rows: list[ManifestRow], fakes: str) -> tuple[list[tuple[int, str]], str]:
    """Validation items and what the FAKE side is (``"dataset"`` or ``"sbi"``; see :mod:`fakelens.train`)."""
    reals = [(i, "real") for i, r in enumerate(rows) if r.label == "real"]
    manifest_fakes = [(i, "fake") for i, r in enumerate(rows) if r.label == "fake"]
    if fakes == "sbi" or not manifest_fakes:
        return reals + [(i, "sbi") for i, _ in reals], "sbi"
    return reals + manifest_fakes, "dataset"


def subset_rows(rows: list[ManifestRow], limit: int | None, seed: int) -> list[ManifestRow]:
    """At most ``limit`` rows (all when ``limit`` is 0 or None), drawn with ``seed`` and kept in manifest order."""
    if not limit or limit >= len(rows):
        return rows
    order = np.random.default_rng(seed).permutation(len(rows))[:limit]
    return [rows[i] for i in sorted(order)]


def check_leakage(train_rows: list[ManifestRow], val_rows: list[ManifestRow]) -> None:
    """Warn when a leakage group (identity, FF++ id pair, ...) has rows in both train and val."""
    shared = {r.group for r in train_rows} & {r.group for r in val_rows}
    if shared:
        example = ", ".join(sorted(shared)[:3])
        log.warning("%d leakage group(s) appear in both train and val (e.g. %s): validation is optimistic", len(shared), example)


def dense_points(mask: str, manifest: str, out: str, rows: list[ManifestRow], items: list[tuple[int, str]], progress: bool = True) -> list | None:
    """With SBI ``mask == "dense"``, the face-mesh points of the rows SBI blends (None for the others), meshed once
    and cached beside the manifest (in the run folder ``out`` where that is read-only); otherwise None."""
    if mask != "dense":
        return None
    import os

    from fakelens.facemesh import cache_path_for, dense_landmarks

    wanted = sorted({i for i, kind in items if kind == "sbi"})
    cache = cache_path_for(manifest)
    if not os.access(cache.parent, os.W_OK):
        cache = Path(out) / "facemesh.npz"
    found = dense_landmarks([rows[i] for i in wanted], cache, progress=progress)
    dense: list = [None] * len(rows)
    for i, points in zip(wanted, found):
        dense[i] = points
    missing = sum(points is None for points in found)
    if missing:
        log.info("face mesh: no face found in %d of %d crops; those use the 5-point mask", missing, len(wanted))
    return dense


def write_log(out: Path, history: list[dict]) -> None:
    """``log.jsonl``: rewritten whole (atomically) from the history kept in the checkpoint."""
    atomic_write_text(out / "log.jsonl", "".join(json.dumps(entry) + "\n" for entry in history))


def plot_history(out: Path, history: list[dict]) -> None:
    """``loss.png`` (train and val loss) and ``auc.png`` (val AUC and AP) per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        return
    epochs = [h["epoch"] for h in history]

    def series(key):
        return [np.nan if h.get(key) is None else h[key] for h in history]

    for name, keys, ylabel in (
        ("loss", ("train_loss", "val_loss"), "BCE loss"),
        ("auc", ("val_auc", "val_ap"), "validation AUC / AP"),
    ):
        fig, ax = plt.subplots(figsize=(5, 3.4))
        for key in keys:
            ax.plot(epochs, series(key), marker="o", label=key)
        ax.set(xlabel="epoch", ylabel=ylabel, title=f"{out.name}: {name}")
        if name == "auc":
            ax.set_ylim(0, 1.02)
        ax.legend()
        ax.grid(alpha=0.3)
        with atomic.atomic_path(out / f"{name}.png") as tmp:
            fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
        plt.close(fig)
