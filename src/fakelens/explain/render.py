"""Drawing explanations: colour maps, overlays on crops and on full frames, captioned figures with a
colour bar, and writing them (PNG, JSON) atomically."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fakelens import atomic
from fakelens.constants import CAM_METHODS
from fakelens.explain.core import DEFAULT_METHOD, ExplainError


def colorize(heatmap: np.ndarray, colormap: str = "jet") -> np.ndarray:
    """(H, W) map in [0, 1] -> (H, W, 3) uint8 RGB through a matplotlib colormap ("jet", "inferno", ...)."""
    from matplotlib import colormaps

    try:
        cmap = colormaps[colormap]
    except KeyError:
        raise ExplainError(f"unknown colormap {colormap!r}") from None
    table = (cmap(np.linspace(0.0, 1.0, 256))[:, :3] * 255.0 + 0.5).astype(np.uint8)
    index = (np.clip(np.nan_to_num(np.asarray(heatmap, dtype=np.float32)), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return table[index]


def _check_alpha(alpha: float) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise ExplainError(f"alpha must be in [0, 1], got {alpha}")


def _blend(image: np.ndarray, colour: np.ndarray, alpha: float) -> np.ndarray:
    mixed = image.astype(np.float32) * (1.0 - alpha) + colour.astype(np.float32) * alpha
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def overlay(crop: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45, colormap: str = "jet") -> np.ndarray:
    """The heatmap blended over its crop: (H, W, 3) uint8 RGB. ``alpha`` is the heatmap's weight
    (default 0.45, enough to read the colours and still see the face). A heatmap of another size is
    resized to the crop."""
    _check_alpha(alpha)
    crop = np.asarray(crop)
    if crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8:
        raise ExplainError(f"expected an (H, W, 3) uint8 RGB crop, got {crop.shape} {crop.dtype}")
    heatmap = np.asarray(heatmap, dtype=np.float32)
    if heatmap.shape != crop.shape[:2]:
        heatmap = cv2.resize(heatmap, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_LINEAR)
    return _blend(crop, colorize(heatmap, colormap), alpha)


def crop_to_frame_matrix(face_crop: Any) -> np.ndarray | None:
    """2x3 similarity matrix taking crop pixels to frame pixels, from a ``FaceCrop``'s 5 landmark pairs.

    Needed for landmark-aligned crops (rotated: their square ``crop_box`` is not what they show);
    returns None when the landmarks are missing or degenerate.
    """
    source = np.asarray(getattr(face_crop, "crop_landmarks", ()) or (), dtype=np.float64)
    destination = np.asarray(getattr(face_crop, "landmarks", ()) or (), dtype=np.float64)
    if source.shape != (5, 2) or destination.shape != (5, 2):
        return None
    matrix, _ = cv2.estimateAffinePartial2D(source, destination, method=cv2.LMEDS)
    return matrix


def overlay_on_frame(
    frame: np.ndarray,
    heatmap: np.ndarray,
    crop_box: Sequence[float],
    alpha: float = 0.45,
    colormap: str = "jet",
    face_box: Sequence[float] | None = None,
    matrix: np.ndarray | None = None,
    box_colour: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """The crop's heatmap mapped back onto the full frame: (H, W, 3) uint8 RGB.

    ``crop_box`` (x1, y1, x2, y2, frame pixels) is the square region the crop shows; the heatmap is
    resized to it and clipped at the frame's borders (the box may reach past them). Pixels outside the
    box are left as they are. ``face_box``, if given, is outlined in ``box_colour``. ``matrix`` (2x3,
    crop -> frame, see :func:`crop_to_frame_matrix`) maps aligned, rotated crops exactly instead.
    """
    _check_alpha(alpha)
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ExplainError(f"expected an (H, W, 3) uint8 RGB frame, got {frame.shape} {frame.dtype}")
    heatmap = np.asarray(heatmap, dtype=np.float32)
    height, width = frame.shape[:2]
    result = frame.copy()
    if matrix is not None:
        colour = cv2.warpAffine(colorize(heatmap, colormap), np.asarray(matrix, np.float64), (width, height))
        inside = cv2.warpAffine(np.ones(heatmap.shape, np.uint8), np.asarray(matrix, np.float64), (width, height)) > 0
        result[inside] = _blend(frame[inside], colour[inside], alpha)
    else:
        x1, y1, x2, y2 = (int(round(float(v))) for v in crop_box)
        if x2 <= x1 or y2 <= y1:
            raise ExplainError(f"crop box {tuple(crop_box)} is empty")
        fx1, fy1, fx2, fy2 = max(0, x1), max(0, y1), min(width, x2), min(height, y2)
        if fx2 > fx1 and fy2 > fy1:  # else the box lies wholly outside the frame: nothing to draw
            resized = cv2.resize(heatmap, (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR)
            visible = resized[fy1 - y1 : fy2 - y1, fx1 - x1 : fx2 - x1]
            region = result[fy1:fy2, fx1:fx2]
            result[fy1:fy2, fx1:fx2] = _blend(region, colorize(visible, colormap), alpha)
    if face_box is not None:
        bx1, by1, bx2, by2 = (int(round(float(v))) for v in face_box)
        thickness = max(1, round(min(height, width) / 300))
        cv2.rectangle(result, (bx1, by1), (bx2, by2), box_colour, thickness)
    return result


def _method_label(method: str) -> str:
    """Display name of a method ("Grad-CAM"), from ``CAM_METHODS``; an unknown name as it is."""
    return CAM_METHODS.get(method, method)


def _figure_to_array(figure) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _colour_bar(figure, axis, colormap: str, label: str) -> None:
    """A colour bar for relevance 0..1 through ``colormap`` in ``axis``, labelled ``label``."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    bar = figure.colorbar(ScalarMappable(Normalize(0.0, 1.0), colormap), cax=axis)
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=7)


def render_explanation(
    crop: np.ndarray,
    heatmap: np.ndarray,
    score: float,
    frame: np.ndarray | None = None,
    crop_box: Sequence[float] | None = None,
    face_box: Sequence[float] | None = None,
    method: str = DEFAULT_METHOD,
    target: str = "fake",
    threshold: float = 0.5,
    alpha: float = 0.45,
    colormap: str = "jet",
    title: str | None = None,
    matrix: np.ndarray | None = None,
) -> np.ndarray:
    """A captioned figure as (H, W, 3) uint8 RGB: [frame with the heatmap at the crop box], the crop,
    the crop with its heatmap, and a colour bar; the title gives P(fake), the verdict at ``threshold``
    and what the map explains. ``frame`` and ``crop_box`` (or ``matrix``) go together (default None:
    crop panels only)."""
    from matplotlib.figure import Figure

    with_frame = frame is not None and (crop_box is not None or matrix is not None)
    panels = 3 if with_frame else 2
    ratios = ([1.6] if with_frame else []) + [1.0, 1.0]
    figure = Figure(figsize=(3.0 * sum(ratios) + 0.9, 3.6), dpi=100)
    grid = figure.add_gridspec(1, panels + 1, width_ratios=ratios + [0.06], wspace=0.08)
    axes = [figure.add_subplot(grid[0, i]) for i in range(panels)]
    index = 0
    if with_frame:
        shown = overlay_on_frame(frame, heatmap, crop_box or (0, 0, 1, 1), alpha, colormap, face_box, matrix)
        axes[0].imshow(shown)
        axes[0].set_title("frame", fontsize=9)
        index = 1
    axes[index].imshow(crop)
    axes[index].set_title("face crop", fontsize=9)
    axes[index + 1].imshow(overlay(crop, heatmap, alpha, colormap))
    axes[index + 1].set_title(f"{_method_label(method)} for {target.upper()}", fontsize=9)
    for axis in axes:
        axis.set_axis_off()
    _colour_bar(figure, figure.add_subplot(grid[0, panels]), colormap, f"relevance for {target.upper()}")
    verdict = "FAKE" if score >= threshold else "REAL"
    figure.suptitle(title or f"P(fake) = {score:.3f}  ->  {verdict} (threshold {threshold:.2f})", fontsize=11)
    figure.subplots_adjust(left=0.02, right=0.93, bottom=0.03, top=0.83)
    return _figure_to_array(figure)


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write an (H, W, 3) uint8 RGB array as PNG, atomically (``name.tmp`` then ``os.replace``)."""
    from PIL import Image

    with atomic.atomic_path(path) as temporary:
        Image.fromarray(np.ascontiguousarray(image)).save(temporary, format="PNG")
    return Path(path)


def write_json(data: Any, path: str | Path) -> Path:
    """Write JSON atomically (``name.tmp`` then ``os.replace``)."""
    return atomic.write_json(path, data)
