"""Reports on one prediction: JSON and CSV export, timelines, annotated frames and explained faces.

Everything the Streamlit app shows beyond the bare :class:`fakelens.detector.Prediction` is computed
here, so that it can be tested (and reused by scripts) without a browser:

>>> from fakelens.report import analyse, to_csv
>>> analysis = analyse(detector, "examples/fake_ffpp_NeuralTextures_004_982.mp4", method="gradcam")
>>> analysis.prediction.label, len(analysis.suspicious)
>>> open("faces.csv", "w").write(to_csv(analysis.prediction))

Explanations are computed for the ``top_k`` most suspicious faces only, not for every face:
one CAM costs several classifier passes per crop, and a person looks at a handful of them.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from fakelens.constants import DEFAULT_CAM_METHOD

if TYPE_CHECKING:
    from fakelens.detector import Detector, FaceScore, Prediction

#: Columns of :func:`face_rows` / :func:`to_csv`, in order.
CSV_COLUMNS = (
    "source",
    "kind",
    "frame_index",
    "timestamp",
    "track",
    "x1",
    "y1",
    "x2",
    "y2",
    "detection_prob",
    "score",
    "track_score",
    "above_threshold",
    "verdict",
)
#: Faces explained by default: enough to see a pattern, few enough to stay interactive on a CPU.
DEFAULT_TOP_K = 4
#: Frames shown in the annotated contact sheet by default.
DEFAULT_SHEET_FRAMES = 8
#: Box colours (RGB) for faces at or above / below the threshold.
FAKE_COLOUR = (230, 40, 40)
REAL_COLOUR = (40, 190, 70)

ProgressCallback = Callable[[str, float], None]


# --------------------------------------------------------------------------- export


def to_json(prediction: Prediction, indent: int | None = 2) -> str:
    """The prediction's full JSON report (``Prediction.to_dict()``), newline-terminated."""
    return json.dumps(prediction.to_dict(), indent=indent) + "\n"


def face_rows(prediction: Prediction) -> list[dict]:
    """A row per face (columns :data:`CSV_COLUMNS`): where it is, its P(fake) and its track's."""
    track_scores = {t.track: t.score for t in prediction.tracks}
    rows = []
    for face in prediction.faces:
        x1, y1, x2, y2 = (round(float(v), 1) for v in face.box)
        rows.append(
            {
                "source": prediction.source,
                "kind": prediction.kind,
                "frame_index": face.frame_index,
                "timestamp": round(face.timestamp, 3),
                "track": face.track,
                "x1": x1,
                "y1": y1,
                "x2": x2,
                "y2": y2,
                "detection_prob": round(face.detection_prob, 4),
                "score": round(face.score, 5),
                "track_score": round(track_scores[face.track], 5),
                "above_threshold": face.score >= prediction.threshold,
                "verdict": prediction.label,
            }
        )
    return rows


def to_csv(prediction: Prediction) -> str:
    """:func:`face_rows` as CSV text with a header (just the header when no face was found)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(face_rows(prediction))
    return buffer.getvalue()


def timeline_rows(prediction: Prediction) -> list[dict]:
    """Per-face points for a score-over-time chart: ``timestamp``, ``frame_index``, ``track``, ``score``."""
    return [
        {"timestamp": round(f.timestamp, 3), "frame_index": f.frame_index, "track": f"face {f.track}", "score": f.score} for f in prediction.faces
    ]


def png_bytes(image: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 RGB array encoded as PNG bytes (for downloads)."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("could not encode the image as PNG")
    return encoded.tobytes()


# --------------------------------------------------------------------------- choosing faces and frames


def most_suspicious(prediction: Prediction, k: int = DEFAULT_TOP_K) -> list[int]:
    """Indices into ``prediction.faces`` of the ``k`` highest P(fake), highest first.

    The verdict's track comes first so that the faces explained are the ones behind the verdict;
    other tracks fill the remaining places by score.
    """
    order = sorted(
        range(len(prediction.faces)),
        key=lambda i: (prediction.faces[i].track != prediction.track, -prediction.faces[i].score, i),
    )
    return order[: max(0, k)]


def faces_per_track(prediction: Prediction, per_track: int = 6) -> dict[int, list[int]]:
    """For each track, up to ``per_track`` face indices spread evenly over its frames."""
    by_track: dict[int, list[int]] = {}
    for i, face in enumerate(prediction.faces):
        by_track.setdefault(face.track, []).append(i)
    return {track: _spread(indices, per_track) for track, indices in sorted(by_track.items())}


def _spread(items: Sequence, count: int) -> list:
    if len(items) <= count:
        return list(items)
    step = len(items) / count
    return [items[int(step * (i + 0.5))] for i in range(count)]


def frames_at(path: str | Path, indices: Sequence[int], num_frames: int) -> dict[int, np.ndarray]:
    """The frames of a prediction with the given indices, decoded again from ``path``.

    ``num_frames`` must be the value the prediction sampled with: sampling is deterministic, so the
    same frames come back. Only the requested frames are kept in memory.
    """
    from fakelens.media import load_frames

    wanted = set(int(i) for i in indices)
    if not wanted:
        return {}
    return {f.index: f.image for f in load_frames(path, num_frames=num_frames) if f.index in wanted}


# --------------------------------------------------------------------------- drawing


def annotate_frame(frame: np.ndarray, faces: Sequence[FaceScore], threshold: float) -> np.ndarray:
    """The frame with each face's box and P(fake): red at or above ``threshold``, green below."""
    image = np.ascontiguousarray(frame).copy()
    height, width = image.shape[:2]
    thickness = max(2, round(min(height, width) / 250))
    scale = max(0.5, min(height, width) / 700)
    for face in faces:
        colour = FAKE_COLOUR if face.score >= threshold else REAL_COLOUR
        x1, y1, x2, y2 = (int(round(float(v))) for v in face.box)
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, thickness)
        text = f"face {face.track}: {face.score:.2f}"
        (text_w, text_h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        top = max(0, y1 - text_h - base - 4)
        cv2.rectangle(image, (x1, top), (x1 + text_w + 6, top + text_h + base + 4), colour, -1)
        cv2.putText(image, text, (x1 + 3, top + text_h + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), max(1, thickness - 1), cv2.LINE_AA)
    return image


def contact_sheet(images: Sequence[np.ndarray], captions: Sequence[str], columns: int = 4, width: int = 320) -> np.ndarray:
    """Images scaled to ``width`` px wide, captioned and laid out ``columns`` to a row, on white."""
    if not images:
        raise ValueError("contact_sheet needs at least one image")
    tiles = []
    for image, caption in zip(images, captions):
        height = max(1, round(image.shape[0] * width / image.shape[1]))
        tile = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        strip = np.full((24, width, 3), 255, np.uint8)
        cv2.putText(strip, caption, (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (20, 20, 20), 1, cv2.LINE_AA)
        tiles.append(np.concatenate([tile, strip], axis=0))
    tile_h = max(t.shape[0] for t in tiles)
    columns = max(1, min(columns, len(tiles)))
    rows = math.ceil(len(tiles) / columns)
    pad = 6
    sheet = np.full((rows * (tile_h + pad) + pad, columns * (width + pad) + pad, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        top, left = pad + r * (tile_h + pad), pad + c * (width + pad)
        sheet[top : top + tile.shape[0], left : left + width] = tile
    return sheet


def annotated_sheet(prediction: Prediction, frames: dict[int, np.ndarray], count: int = DEFAULT_SHEET_FRAMES) -> np.ndarray | None:
    """Up to ``count`` of the given frames (spread over time) with their faces boxed and scored.

    None when ``frames`` holds no frame with a face.
    """
    with_faces = sorted({f.frame_index for f in prediction.faces} & set(frames))
    chosen = _spread(with_faces, count)
    if not chosen:
        return None
    times = dict(prediction.frame_times)
    images = [annotate_frame(frames[i], [f for f in prediction.faces if f.frame_index == i], prediction.threshold) for i in chosen]
    captions = [f"frame {i}  t={times.get(i, 0.0):.2f}s" for i in chosen]
    return contact_sheet(images, captions)


# --------------------------------------------------------------------------- explanations


def explanation_target(prediction: Prediction) -> str:
    """What the heatmaps explain: the evidence for the verdict ("fake" for FAKE, "real" otherwise)."""
    return "fake" if prediction.label == "FAKE" else "real"


def explain_faces(detector: Detector, prediction: Prediction, indices: Sequence[int], method: str) -> np.ndarray:
    """(K, 224, 224) heatmaps in [0, 1] for the faces ``indices`` of ``prediction``, by ``method``.

    The target is :func:`explanation_target`, so a FAKE verdict shows what pushed towards FAKE.
    """
    if not indices:
        return np.zeros((0, 224, 224), np.float32)
    crops = [prediction.faces[i].crop for i in indices]
    if any(c is None for c in crops):
        raise ValueError("the prediction carries no face crops to explain")
    return detector.explainer(method).explain(np.stack(crops), target=explanation_target(prediction))


@dataclass
class Analysis:
    """A prediction with what it takes to show it: the most suspicious faces, their frames and heatmaps.

    ``suspicious`` indexes ``prediction.faces`` (most suspicious first); ``frames`` holds the full frames
    of those faces (frame index -> RGB); ``heatmaps`` maps a CAM method to (K, 224, 224) maps for the
    ``suspicious`` faces; ``sheet`` is the annotated contact sheet (None without faces).
    """

    prediction: Prediction
    suspicious: list[int]
    frames: dict[int, np.ndarray] = field(repr=False)
    heatmaps: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    sheet: np.ndarray | None = field(default=None, repr=False)

    def explain(self, detector: Detector, method: str) -> np.ndarray:
        """Heatmaps of the suspicious faces by ``method``, computed once per method."""
        from fakelens.explain import resolve_method

        method = resolve_method(method)
        if method not in self.heatmaps:
            self.heatmaps[method] = explain_faces(detector, self.prediction, self.suspicious, method)
        return self.heatmaps[method]

    def frame_overlay(self, position: int, method: str, alpha: float = 0.45) -> np.ndarray | None:
        """The ``position``-th suspicious face's heatmap drawn on its full frame (None if not computed)."""
        from fakelens.explain import overlay_on_frame

        face = self.prediction.faces[self.suspicious[position]]
        frame = self.frames.get(face.frame_index)
        maps = self._maps(method)
        if frame is None or maps is None:
            return None
        return overlay_on_frame(frame, maps[position], face.crop_box, alpha=alpha, face_box=face.box)

    def crop_overlay(self, position: int, method: str, alpha: float = 0.45) -> np.ndarray | None:
        """The ``position``-th suspicious face's heatmap drawn on its crop (None if not computed)."""
        from fakelens.explain import overlay

        maps = self._maps(method)
        if maps is None:
            return None
        return overlay(self.prediction.faces[self.suspicious[position]].crop, maps[position], alpha=alpha)

    def _maps(self, method: str) -> np.ndarray | None:
        """The computed maps of ``method`` under any of its spellings (the keys are canonical names)."""
        from fakelens.explain import resolve_method

        return self.heatmaps.get(resolve_method(method))


def analyse(
    detector: Detector,
    path: str | Path,
    name: str | None = None,
    num_frames: int | None = None,
    threshold: float | None = None,
    aggregate: str | None = None,
    method: str | None = DEFAULT_CAM_METHOD,
    top_k: int = DEFAULT_TOP_K,
    sheet_frames: int = DEFAULT_SHEET_FRAMES,
    progress: ProgressCallback | None = None,
) -> Analysis:
    """Predict, then explain the ``top_k`` most suspicious faces and draw the annotated frames.

    Parameters
    ----------
    detector : the :class:`fakelens.detector.Detector` to run.
    path : image or video file.
    name : the source name reported (default None: ``path``), e.g. an upload's original file name.
    num_frames, threshold, aggregate : as :meth:`Detector.predict` (default None: the detector's).
    method : CAM method for the suspicious faces (default ``"gradcam"``; None: no heatmaps).
    top_k : faces explained (default 4).
    sheet_frames : frames in the annotated contact sheet (default 8).
    progress : ``progress(stage, fraction)`` as stages finish; the detector's own stages fill 0..0.7.

    Raises :class:`fakelens.errors.MediaError` for unreadable input.
    """
    report = progress or (lambda stage, fraction: None)
    num_frames = num_frames or detector.num_frames
    prediction = detector.predict(
        path,
        num_frames=num_frames,
        threshold=threshold,
        aggregate=aggregate,
        progress=lambda stage, fraction: report(stage, 0.7 * fraction) if stage != "done" else None,
        keep_frames=True,  # the frames with faces, for drawing: decoding the video again cost as much as predicting
    )
    if name is not None:
        prediction.source = name
    suspicious = most_suspicious(prediction, top_k)
    sheet_indices = _spread(sorted({f.frame_index for f in prediction.faces}), sheet_frames)
    needed = {prediction.faces[i].frame_index for i in suspicious} | set(sheet_indices)
    report("drawing frames", 0.75)
    kept = prediction.frame_images or {}
    frames = {i: kept[i] for i in needed if i in kept}
    prediction.frame_images = None
    sheet = annotated_sheet(prediction, frames, sheet_frames)
    # Only the suspicious faces' frames are kept: a video's full frames would weigh hundreds of MB.
    keep = {prediction.faces[i].frame_index for i in suspicious}
    analysis = Analysis(prediction, suspicious, {i: f for i, f in frames.items() if i in keep}, sheet=sheet)
    if method and suspicious:
        report("explaining", 0.8)
        analysis.explain(detector, method)
    report("done", 1.0)
    return analysis


__all__ = [
    "CSV_COLUMNS",
    "Analysis",
    "analyse",
    "annotate_frame",
    "annotated_sheet",
    "contact_sheet",
    "explain_faces",
    "explanation_target",
    "face_rows",
    "faces_per_track",
    "frames_at",
    "most_suspicious",
    "png_bytes",
    "timeline_rows",
    "to_csv",
    "to_json",
]
