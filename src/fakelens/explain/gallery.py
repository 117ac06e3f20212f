"""Galleries for an evaluation set: REAL/FAKE x correct/wrong grids of explained crops, and the mean
heatmap per true class."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from torch import nn

from fakelens.explain.core import DEFAULT_METHOD, Explainer, ExplainError
from fakelens.explain.render import _colour_bar, _figure_to_array, _method_label, overlay, save_png, write_json

#: The four grids of a gallery: true class x whether the model got it right.
GALLERY_CELLS = ("real_correct", "real_wrong", "fake_correct", "fake_wrong")


def _caption(tile: np.ndarray, text: str, colour: tuple[int, int, int]) -> np.ndarray:
    strip = np.full((22, tile.shape[1], 3), 24, np.uint8)
    cv2.putText(strip, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
    return np.concatenate([tile, strip], axis=0)


def _grid(tiles: list[np.ndarray], title: str, columns: int, tile_size: int) -> np.ndarray:
    if tiles:
        rows = math.ceil(len(tiles) / columns)
        columns = min(columns, len(tiles))
        tile_h, tile_w = tiles[0].shape[:2]
        pad = 4
        canvas = np.full((rows * (tile_h + pad) + pad, columns * (tile_w + pad) + pad, 3), 255, np.uint8)
        for i, tile in enumerate(tiles):
            r, c = divmod(i, columns)
            canvas[pad + r * (tile_h + pad) : pad + r * (tile_h + pad) + tile_h, pad + c * (tile_w + pad) : pad + c * (tile_w + pad) + tile_w] = tile
    else:
        canvas = np.full((tile_size // 2, max(tile_size * 2, 320), 3), 255, np.uint8)
        cv2.putText(canvas, "no crops in this cell", (10, tile_size // 4), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (90, 90, 90), 1, cv2.LINE_AA)
    header = np.full((30, canvas.shape[1], 3), 255, np.uint8)
    cv2.putText(header, title, (6, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([header, canvas], axis=0)


@dataclass
class Gallery:
    """PNG-ready grids for an evaluation run: REAL/FAKE x correct/wrong, and the mean heatmap per class.

    ``grids`` maps each of ``GALLERY_CELLS`` to an RGB image; ``mean_heatmaps`` is the per-class
    figure; ``counts`` gives how many crops fell in each cell (the grids show at most ``max_tiles``).
    """

    method: str
    target: str
    threshold: float
    grids: dict[str, np.ndarray] = field(repr=False)
    mean_heatmaps: np.ndarray = field(repr=False)
    counts: dict[str, int]
    shown: dict[str, list[int]]
    #: the per-crop heatmaps the grids were drawn from (kept for region statistics; not serialised)
    heatmaps: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "target": self.target,
            "threshold": self.threshold,
            "counts": dict(self.counts),
            "shown": {k: list(v) for k, v in self.shown.items()},
        }

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``gallery_<cell>.png``, ``gallery_mean_heatmaps.png`` and ``gallery.json``."""
        out_dir = Path(out_dir)
        paths = {cell: save_png(image, out_dir / f"gallery_{cell}.png") for cell, image in self.grids.items()}
        paths["mean_heatmaps"] = save_png(self.mean_heatmaps, out_dir / "gallery_mean_heatmaps.png")
        index = self.to_dict() | {"files": {k: p.name for k, p in paths.items()}}
        paths["index"] = write_json(index, out_dir / "gallery.json")
        return paths


def _normalise_labels(labels: Sequence[Any]) -> np.ndarray:
    values = []
    for label in labels:
        text = str(label).strip().lower()
        if text in ("fake", "1", "true"):
            values.append(1)
        elif text in ("real", "0", "false"):
            values.append(0)
        else:
            raise ExplainError(f"labels must be 'real'/'fake' (or 0/1), got {label!r}")
    return np.asarray(values, dtype=np.int64)


def build_gallery(
    crops: np.ndarray,
    heatmaps: np.ndarray,
    labels: Sequence[Any],
    scores: Sequence[float],
    threshold: float = 0.5,
    method: str = DEFAULT_METHOD,
    target: str = "predicted",
    max_tiles: int = 24,
    columns: int = 6,
    tile_size: int = 160,
    alpha: float = 0.45,
    colormap: str = "jet",
) -> Gallery:
    """Sort explained crops into REAL/FAKE x correct/wrong grids and average the heatmaps per class.

    ``labels`` are "real"/"fake" (or 0/1 with 1 = FAKE), ``scores`` P(fake). Correct cells show the most
    confident crops first, wrong cells the most confidently wrong first (the ones worth looking at).
    Each tile is the heatmap overlay captioned with P(fake). Defaults: at most 24 tiles per grid, 6
    columns, 160-pixel tiles.
    """
    crops = np.asarray(crops)
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    truth = _normalise_labels(labels)
    score_array = np.asarray(scores, dtype=np.float64)
    if not (len(crops) == len(heatmaps) == len(truth) == len(score_array)):
        raise ExplainError(f"crops, heatmaps, labels and scores differ in length: {len(crops)}, {len(heatmaps)}, {len(truth)}, {len(score_array)}")
    if len(crops) == 0:
        raise ExplainError("no crops for the gallery")
    predicted = (score_array >= threshold).astype(np.int64)
    grids, counts, shown = {}, {}, {}
    for cell in GALLERY_CELLS:
        class_name, outcome = cell.split("_")
        label = 1 if class_name == "fake" else 0
        correct = outcome == "correct"
        members = np.flatnonzero((truth == label) & ((predicted == label) == correct))
        # Confidence in the *predicted* class: |score - threshold| ranks both correct and wrong cells.
        order = members[np.argsort(-np.abs(score_array[members] - threshold), kind="stable")]
        chosen = order[:max_tiles]
        tiles = []
        for i in chosen:
            tile = cv2.resize(overlay(crops[i], heatmaps[i], alpha, colormap), (tile_size, tile_size), interpolation=cv2.INTER_AREA)
            colour = (120, 230, 120) if correct else (255, 120, 120)
            tiles.append(_caption(tile, f"P(fake) {score_array[i]:.3f}", colour))
        title = f"{class_name.upper()} crops, {'correct' if correct else 'WRONG'}: {len(members)} (showing {len(chosen)})"
        grids[cell] = _grid(tiles, title, columns, tile_size)
        counts[cell] = int(len(members))
        shown[cell] = [int(i) for i in chosen]
    mean_figure = _render_mean_heatmaps(crops, heatmaps, truth, method, target, colormap, alpha)
    return Gallery(method, target, float(threshold), grids, mean_figure, counts, shown)


def _render_mean_heatmaps(crops, heatmaps, truth, method, target, colormap, alpha) -> np.ndarray:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.4, 3.9), dpi=100)
    grid = figure.add_gridspec(1, 3, width_ratios=[1, 1, 0.06], wspace=0.08)
    for column, (label, name) in enumerate(((0, "REAL"), (1, "FAKE"))):
        axis = figure.add_subplot(grid[0, column])
        members = truth == label
        axis.set_axis_off()
        if not members.any():
            axis.set_title(f"{name}: no crops", fontsize=9)
            continue
        mean_crop = crops[members].astype(np.float32).mean(axis=0)
        grey = np.repeat(mean_crop.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
        # The mean map is shown on its own scale (not rescaled to [0, 1]) so the two classes compare.
        axis.imshow(overlay(grey, heatmaps[members].mean(axis=0), alpha, colormap))
        axis.set_title(f"{name} crops (n={int(members.sum())})", fontsize=9)
    _colour_bar(figure, figure.add_subplot(grid[0, 2]), colormap, "mean relevance")
    target_text = "predicted class" if target == "predicted" else target.upper()
    figure.suptitle(f"Mean {_method_label(method)} heatmap per true class (target: {target_text})", fontsize=10)
    figure.subplots_adjust(left=0.02, right=0.92, bottom=0.03, top=0.85)
    return _figure_to_array(figure)


def explain_gallery(
    model: nn.Module,
    crops: np.ndarray,
    labels: Sequence[Any],
    method: str = DEFAULT_METHOD,
    target: str = "predicted",
    threshold: float = 0.5,
    progress: bool = False,
    **gallery_kwargs: Any,
) -> Gallery:
    """Explain ``crops`` with ``model`` and build their :class:`Gallery` (scores from the same pass)."""
    explanation = Explainer(model, method=method, threshold=threshold).explanation(crops, target, progress)
    gallery = build_gallery(np.asarray(crops), explanation.heatmaps, labels, explanation.scores, threshold, method, target, **gallery_kwargs)
    gallery.heatmaps = np.asarray(explanation.heatmaps)
    return gallery
