"""Stage 2, once more: look again, at full resolution, where the detector's downscaled pass came up short.

``predict`` detects faces on frames downscaled to 640 px (fast, and enough for most faces). A face ~100 px wide in
a dim 1080p frame is ~35 px there, where P-Net and R-Net score low contrast poorly, and a face that fills a small
face-track clip to its edges is found unsure on the padded canvas: both are missed in some frames and found
unsure in others, and a verdict resting on 7 of 32 frames is a poor one. :func:`second_look` searches those
frames again, once per file, in both ``predict`` paths (:meth:`fakelens.faces.FaceExtractor.second_look`).
``benchmarks/face_recall.py`` measures what it finds against reference MTCNN at full resolution, and its cost.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from fakelens.constants import DEFAULT_MIN_FACE_PROB
from fakelens.faces import centre_distance, detect_faces, square_box

if TYPE_CHECKING:  # pragma: no cover
    from fakelens.mtcnn import MTCNN, Face

#: The side of the region searched again at full resolution
#: around a face found in a neighbouring frame, in units of that face's box side.
LOOK_AGAIN_REGION = 3.0
#: A file where fewer than this share of the sampled frames have a sure face gets a full-resolution pass...
FULL_PASS_SHARE = 0.5
#: ... over at most this many of its other frames, spread evenly (the rest are then searched around them).
FULL_PASS_FRAMES = 8
#: Frames the detector does not downscale, with no sure face, are searched again for faces down to this size
#: (pixels): face-track clips and small videos hold faces of 40-60 px that a 60 px floor misses.
SMALL_FACE_SIZE = 40


def _offset(faces: list[Face], dx: float, dy: float) -> list[Face]:
    """Faces found in a region whose top-left corner is (dx, dy) of the frame, in the frame's pixels."""
    return [
        dataclasses.replace(
            face,
            box=(face.box[0] + dx, face.box[1] + dy, face.box[2] + dx, face.box[3] + dy),
            landmarks=tuple((float(x) + dx, float(y) + dy) for x, y in face.landmarks),
        )
        for face in faces
    ]


def _near(face: Face, anchor: Face) -> bool:
    """Whether ``face`` could continue ``anchor``'s track: centres less than one box side apart, as tracks link."""
    return centre_distance(face.box, anchor.box) < 1.0


def second_look(
    detector: MTCNN,
    images: Sequence[np.ndarray],
    faces_per_frame: Sequence[Sequence[Face]],
    sure: float = DEFAULT_MIN_FACE_PROB,
) -> list[list[Face]]:
    """Faces per frame after looking again, at full resolution, where a downscaled pass came up short.

    A frame's face is *sure* at probability ``sure`` or more (what ``predict`` scores). For frames larger than the
    detector's ``detection_size``:

    1. **Full-resolution pass** on files where fewer than :data:`FULL_PASS_SHARE` of the frames have a sure face:
       up to :data:`FULL_PASS_FRAMES` of the others, spread evenly, are detected at full resolution.
    2. **Regions around the tracks**: in every frame with no sure face near a face of the nearest frame before or
       after it (sure faces where the file has any, else any face), the square of :data:`LOOK_AGAIN_REGION` box
       sides around that face is detected at full resolution. The most probable face found near it is added, or
       replaces the frame's unsure face there when it is more probable.

    3. **Small frames** (those it does not downscale) with no sure face: detected again with faces down to
       :data:`SMALL_FACE_SIZE` px, on the padded canvas and on the frame itself (a face that fills a face-track
       clip to its edges is found surely without the canvas); these frames are small, so this costs little.

    Frames whose first pass found sure faces keep them unchanged, so most files cost nothing more.
    """
    out = [list(faces) for faces in faces_per_frame]

    def is_sure(faces) -> bool:
        return any(f.prob >= sure for f in faces)

    size = detector.detection_size
    large = [size is not None and max(img.shape[:2]) > size for img in images]
    finer = detector.variant(min_face_size=min(detector.min_face_size, SMALL_FACE_SIZE))
    small = [k for k, faces in enumerate(out) if not large[k] and not is_sure(faces)]
    if small:
        # Padded (as the first pass) with the finer floor, and unpadded: a face that fills a small frame to its
        # edges is found surely without the black canvas around it.
        padded = detect_faces(finer, [images[k] for k in small]) if finer is not detector else [out[k] for k in small]
        for k, *tries in zip(small, padded, finer.detect([images[k] for k in small])):
            for found in tries:
                if found and max(f.prob for f in found) > max((f.prob for f in out[k]), default=0.0):
                    out[k] = list(found)
    if not any(large):
        return out
    full = detector.full_resolution()

    if sum(is_sure(f) for f in out) < FULL_PASS_SHARE * len(out):
        unsure = [k for k, f in enumerate(out) if not is_sure(f) and large[k]]
        picks = [unsure[round(i)] for i in np.linspace(0, len(unsure) - 1, min(FULL_PASS_FRAMES, len(unsure)))] if unsure else []
        for k, found in zip(picks, detect_faces(full, [images[k] for k in picks])):
            if found and max(f.prob for f in found) > max((f.prob for f in out[k]), default=0.0):
                out[k] = found
    sources = [k for k, f in enumerate(out) if is_sure(f)] or [k for k, f in enumerate(out) if f]
    regions: list[np.ndarray] = []
    owners: list[tuple[int, Face, int, int]] = []  # (frame, anchor, dx, dy) of each region
    for k in range(len(out)):
        if not large[k] or not sources:
            continue
        before = max((j for j in sources if j < k), default=None)
        after = min((j for j in sources if j > k), default=None)
        anchors = [a for j in (before, after) if j is not None for a in out[j] if a.prob >= sure or not is_sure(out[j])]
        h, w = images[k].shape[:2]
        for anchor in anchors:
            if any(_near(face, anchor) and face.prob >= sure for face in out[k]):
                continue
            if any(o[0] == k and _near(anchor, o[1]) for o in owners):
                continue  # the same face, anchored by the frames before and after: one look
            x1, y1, x2, y2 = square_box(anchor.box, LOOK_AGAIN_REGION - 1.0)
            x1, y1 = int(max(0, np.floor(x1))), int(max(0, np.floor(y1)))
            x2, y2 = int(min(w, np.ceil(x2))), int(min(h, np.ceil(y2)))
            if x2 - x1 < 12 or y2 - y1 < 12:
                continue
            regions.append(np.ascontiguousarray(images[k][y1:y2, x1:x2]))
            owners.append((k, anchor, x1, y1))
    if regions:
        for (k, anchor, dx, dy), found in zip(owners, detect_faces(full, regions)):
            near = [f for f in _offset(found, dx, dy) if _near(f, anchor)]
            if not near:
                continue
            best = max(near, key=lambda f: f.prob)
            there = [i for i, face in enumerate(out[k]) if _near(face, anchor)]
            if not there:
                out[k].append(best)
            else:
                i = max(there, key=lambda i: out[k][i].prob)
                if best.prob > out[k][i].prob:
                    out[k][i] = best
    return out


__all__ = ["second_look", "LOOK_AGAIN_REGION", "FULL_PASS_SHARE", "FULL_PASS_FRAMES", "SMALL_FACE_SIZE"]
