"""Where a heatmap looks: the share of its mass in each region of the face, from the 5 landmarks.

Regions (each pixel of a crop belongs to exactly one, first match in this order): ``eyes`` (discs of
radius 0.3 d around each eye, d = inter-ocular distance), ``nose`` (a disc of radius 0.25 d), ``mouth``
(an ellipse around the mouth corners), ``boundary`` (a band of +-0.12 d about the outline of the mean
full-face hull that :mod:`fakelens.sbi` blends inside: where blending seams lie), ``inner_face`` (the rest
of that hull) and ``background`` (everything else: hair, neck, scene).

:func:`region_shares` answers "does the model look at the eyes, the mouth, the blending boundary?" with a
number per region, which ``fakelens explain --gallery`` prints per true class.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

REGIONS = ("eyes", "nose", "mouth", "boundary", "inner_face", "background")


def region_masks(landmarks, size: int = 224) -> dict[str, np.ndarray]:
    """Boolean (size, size) masks of :data:`REGIONS` for a crop with these 5 landmarks (crop pixels)."""
    from fakelens.sbi import FULL_FACE_HULL, hull_from_landmarks

    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (5, 2) or not np.isfinite(points).all():
        raise ValueError("landmarks must be 5 (x, y) points")
    d = float(np.linalg.norm(points[1] - points[0]))
    if d < 1.0:
        raise ValueError("degenerate landmarks (the eyes coincide)")

    def canvas() -> np.ndarray:
        return np.zeros((size, size), np.uint8)

    eyes = canvas()
    for eye in points[:2]:
        cv2.circle(eyes, tuple(int(round(v)) for v in eye), int(round(0.3 * d)), 1, -1)
    nose = canvas()
    cv2.circle(nose, tuple(int(round(v)) for v in points[2]), int(round(0.25 * d)), 1, -1)
    mouth = canvas()
    centre = points[3:].mean(axis=0)
    width = float(np.linalg.norm(points[4] - points[3]))
    angle = float(np.degrees(np.arctan2(*(points[4] - points[3])[::-1])))
    axes = (int(round(width / 2 + 0.15 * d)), int(round(0.25 * d)))
    cv2.ellipse(mouth, tuple(int(round(v)) for v in centre), axes, angle, 0, 360, 1, -1)
    mean_hull = hull_from_landmarks(points, *(sum(r) / 2 for r in FULL_FACE_HULL))
    hull = cv2.convexHull(np.round(mean_hull).astype(np.int32))
    face = canvas()
    cv2.fillConvexPoly(face, hull, 1)
    band = canvas()
    cv2.polylines(band, [hull], True, 1, thickness=max(1, int(round(0.24 * d))))

    taken = np.zeros((size, size), bool)
    masks = {}
    for name, mask in (("eyes", eyes), ("nose", nose), ("mouth", mouth), ("boundary", band), ("inner_face", face)):
        region = mask.astype(bool) & ~taken
        masks[name] = region
        taken |= region
    masks["background"] = ~taken
    return masks


def region_shares(heatmap: np.ndarray, landmarks) -> dict[str, float]:
    """Share of ``heatmap``'s mass (non-negative, any scale) in each of :data:`REGIONS`; they sum to 1."""
    heatmap = np.clip(np.asarray(heatmap, dtype=np.float64), 0, None)
    masks = region_masks(landmarks, heatmap.shape[0])
    total = float(heatmap.sum())
    if total <= 0:
        return {name: 0.0 for name in REGIONS}
    return {name: float(heatmap[masks[name]].sum() / total) for name in REGIONS}


def area_shares(landmarks, size: int = 224) -> dict[str, float]:
    """Each region's share of the crop's area: what a heatmap spread evenly would give (the baseline)."""
    masks = region_masks(landmarks, size)
    return {name: float(masks[name].mean()) for name in REGIONS}


def mean_region_shares(heatmaps: Sequence[np.ndarray], landmarks: Sequence, labels: Sequence[str] | None = None) -> dict[str, dict]:
    """Mean :func:`region_shares` (and the area baseline) over crops with landmarks, per label when given
    (``"all"`` otherwise). Crops without usable landmarks are skipped and counted."""
    groups: dict[str, list[dict]] = {}
    areas: dict[str, list[dict]] = {}
    skipped = 0
    for k, (heatmap, points) in enumerate(zip(heatmaps, landmarks)):
        key = "all" if labels is None else str(labels[k])
        try:
            shares = region_shares(heatmap, points)
            area = area_shares(points, np.asarray(heatmap).shape[0])
        except (ValueError, TypeError):
            skipped += 1
            continue
        groups.setdefault(key, []).append(shares)
        areas.setdefault(key, []).append(area)
    out: dict[str, dict] = {}
    for key, entries in groups.items():
        out[key] = {
            "crops": len(entries),
            "mass": {name: float(np.mean([e[name] for e in entries])) for name in REGIONS},
            "area": {name: float(np.mean([a[name] for a in areas[key]])) for name in REGIONS},
        }
    out["skipped"] = {"crops": skipped}
    return out


def format_region_table(summary: dict[str, dict]) -> str:
    """A text table: per label, heatmap mass and area share of each region (mass/area > 1: looked at more)."""
    lines = [f"{'label':<8} {'crops':>5}  " + "  ".join(f"{name:>16}" for name in REGIONS)]
    for key, entry in summary.items():
        if key == "skipped":
            continue
        cells = [f"{entry['mass'][n]:.2f} (area {entry['area'][n]:.2f})" for n in REGIONS]
        lines.append(f"{key:<8} {entry['crops']:>5}  " + "  ".join(f"{c:>16}" for c in cells))
    if summary.get("skipped", {}).get("crops"):
        lines.append(f"({summary['skipped']['crops']} crops without landmarks left out)")
    return "\n".join(lines)
