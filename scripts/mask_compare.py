"""How far SBI's 5-point mask reaches, against the face oval of the 468-point face mesh, on real crops.

python scripts/mask_compare.py runs/faces/manifest.csv [--split val] [--n 300] [--seed 0] [--out docs/results/mask_compare.md]

For each crop: MTCNN's 5 landmarks (from the manifest) and the face mesh's 468 points (fakelens.facemesh, cached in
``<manifest>.facemesh.npz``). The reference region is the convex hull of the mesh's face oval (forehead top, temples,
jaw, chin: what the SBI paper's hull of dlib's 81 points covers). Compared with it: the 5-point *full-face* hull of
:func:`fakelens.sbi.hull_from_landmarks` at the low end, middle and high end of its random ranges (lift, drop, widen
from ``FULL_FACE_HULL``), and the dense "jaw and brows" hull (the dlib-68 analogue). No jitter, no elastic
deformation: the hulls themselves. Reach is measured along the face's vertical axis (eye centre - mouth centre) in
units of the eye-mouth distance h: ``chin`` = hull's lowest extent minus the mesh chin (point 152; > 0 past the
chin, into the neck), ``brow`` = hull's highest extent minus the top of the brows (> 0 above the brows).
Torch-free apart from reading crops; one thread.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np


def _fill(points: np.ndarray, size: int) -> np.ndarray:
    import cv2

    mask = np.zeros((size, size), dtype=np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points).astype(np.int32)), 1)
    return mask.astype(bool)


def _inside(points: np.ndarray, hull: np.ndarray) -> np.ndarray:
    import cv2

    contour = cv2.convexHull(hull.astype(np.float32))
    return np.array([cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0 for x, y in points])


def measure(five: np.ndarray, dense: np.ndarray, size: int = 224) -> dict[str, dict[str, float]]:
    """Per hull: IoU with the face oval, its coverage and spill, chin and brow reach (units of h), points inside."""
    from fakelens import facemesh
    from fakelens.sbi import FULL_FACE_HULL, dense_hull_points, hull_from_landmarks

    eye_centre, mouth_centre = five[:2].mean(axis=0), five[3:].mean(axis=0)
    h = float(np.linalg.norm(eye_centre - mouth_centre))
    up = (eye_centre - mouth_centre) / h
    chin_height = float(dense[facemesh.CHIN] @ up)
    brow_top = float((dense[list(facemesh.BROWS)] @ up).max())
    oval = dense_hull_points(dense, np.random.default_rng(0), "oval")
    oval_mask = _fill(oval, size)
    hulls = {
        f"5-point full face, {name}": hull_from_landmarks(five, *(lo + t * (hi - lo) for lo, hi in FULL_FACE_HULL))
        for name, t in (("low", 0.0), ("middle", 0.5), ("high", 1.0))
    }
    hulls["dense jaw and brows"] = dense_hull_points(dense, np.random.default_rng(0), "brows")
    hulls["dense face oval"] = oval
    out = {}
    for name, hull in hulls.items():
        mask = _fill(hull, size)
        heights = hull @ up
        out[name] = {
            "iou": float((mask & oval_mask).sum() / max((mask | oval_mask).sum(), 1)),
            "coverage": float((mask & oval_mask).sum() / max(oval_mask.sum(), 1)),
            "spill": float((mask & ~oval_mask).sum() / max(mask.sum(), 1)),
            "chin": (float(heights.min()) - chin_height) / -h,
            "brow": (float(heights.max()) - brow_top) / h,
            "chin_in": float(_inside(dense[[facemesh.CHIN]], hull)[0]),
            "jaw_in": float(_inside(dense[list(facemesh.JAW)], hull).mean()),
            "brows_in": float(_inside(dense[list(facemesh.BROWS)], hull).mean()),
        }
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path, help="manifest of REAL crops with 5 crop landmarks (the face pool's)")
    parser.add_argument("--split", default="val", help="which split's crops (default val)")
    parser.add_argument("--n", type=int, default=300, help="crops, a seeded sample (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="which crops (default 0)")
    parser.add_argument("--out", type=Path, default=None, help="also write the Markdown here")
    args = parser.parse_args(argv)

    import cv2

    cv2.setNumThreads(1)
    from fakelens import atomic, facemesh
    from fakelens.data import load_crop, read_manifest

    rows = [r for r in read_manifest(args.manifest, split=args.split) if r.label == "real" and r.crop_landmarks is not None]
    rng = np.random.default_rng(args.seed)
    rows = [rows[i] for i in sorted(rng.choice(len(rows), size=min(args.n, len(rows)), replace=False))]
    start = time.perf_counter()
    dense_all = facemesh.dense_landmarks(rows, facemesh.cache_path_for(args.manifest))
    mesh_seconds = time.perf_counter() - start

    per_hull: dict[str, list[dict[str, float]]] = {}
    five_errors, no_face = [], 0
    for row, dense in zip(rows, dense_all):
        image, five = load_crop(row)
        if dense is None or five is None:
            no_face += 1
            continue
        dense = dense * (image.shape[1], image.shape[0])
        five_errors.append(np.linalg.norm(facemesh.five_points(dense) - five, axis=1).max() / np.linalg.norm(five[1] - five[0]))
        for name, values in measure(five, dense, image.shape[0]).items():
            per_hull.setdefault(name, []).append(values)

    used = len(five_errors)
    lines = [
        f"# SBI masks: 5-point extrapolated hull vs the 468-point face mesh ({used} {args.split} crops)",
        "",
        f"`python scripts/mask_compare.py {args.manifest} --split {args.split} --n {args.n} --seed {args.seed}`",
        "",
        f"{len(rows)} crops drawn from the manifest's {args.split} split ({Path(args.manifest).parent.name}); the mesh found "
        f"no face (confidence < {facemesh.MIN_CONFIDENCE}) in {no_face}. Mesh vs MTCNN's 5 points: worst point per crop, "
        f"median {np.median(five_errors):.3f} and 95th percentile {np.percentile(five_errors, 95):.3f} of the "
        f"inter-ocular distance. Reference region: the convex hull of the mesh's face oval. Medians over crops "
        f"(chin and brow reach in eye-mouth distances h; + = past the chin / above the brows); the last three columns "
        f"are the share of crops whose chin point is inside the hull, and the mean share of jaw-line and brow points inside.",
        "",
        "| hull | IoU with face oval | oval covered | hull outside oval | chin reach (h) | brow reach (h) "
        "| chin inside | jaw points inside | brow points inside |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, values in per_hull.items():
        m = {k: np.median([v[k] for v in values]) for k in values[0]}
        mean = {k: np.mean([v[k] for v in values]) for k in ("chin_in", "jaw_in", "brows_in")}
        lines.append(
            f"| {name} | {m['iou']:.3f} | {m['coverage']:.3f} | {m['spill']:.3f} | {m['chin']:+.2f} | {m['brow']:+.2f} "
            f"| {mean['chin_in']:.2f} | {mean['jaw_in']:.2f} | {mean['brows_in']:.2f} |"
        )
    lines += [
        "",
        f"Meshing {len(rows)} crops (or reading them from the cache): {mesh_seconds:.1f} s, one thread, "
        f"{platform.machine()} ({platform.python_version()}).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        atomic.write_bytes(args.out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
