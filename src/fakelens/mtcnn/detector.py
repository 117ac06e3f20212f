"""The :class:`MTCNN` detector: frames in, :class:`Face` lists out, through P-Net, R-Net and O-Net.

Frames of one size are stacked, each gets one summed-area table (:mod:`.pyramid`), P-Net proposes
windows over the pyramid, and R-Net and O-Net each score the crops of all frames' candidates together,
a cache-sized chunk per call on a CPU.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torchvision.ops import batched_nms

from fakelens.device import resolve_device
from fakelens.errors import InvalidArgument, MediaError
from fakelens.mtcnn.boxes import crop_windows, nms_min, regress, square
from fakelens.mtcnn.nets import PNET_WINDOW, fold_input_normalisation, load_network
from fakelens.mtcnn.pyramid import area_crops, area_resize, downscale, integral, pyramid_scales, resize_plan

#: Stacked frames are split into chunks of at most this many pixels (at detection resolution), which
#: bounds memory (summed-area tables take 12 bytes a pixel) while keeping batches large enough to pay off.
MAX_BATCH_PIXELS = 16 * 1280 * 720
#: Work per network call: pyramid pixels for P-Net, crops for R-Net and O-Net. On a CPU, small calls
#: keep activations in cache (about 2x faster than one big call, measured on 720p frames); a GPU
#: wants big calls.
CPU_CHUNKS = {"pnet": 400_000, "rnet": 256, "onet": 32}
GPU_CHUNKS = {"pnet": 64 * 1280 * 720, "rnet": 4096, "onet": 1024}
#: IoU above which P-Net windows of one scale are merged, then windows across scales, R-Net boxes,
#: and (intersection over the smaller box) O-Net boxes: the values of the original MTCNN.
NMS_PNET_SCALE = 0.5
NMS_PNET_ALL = 0.7
NMS_RNET = 0.7
NMS_ONET_MIN = 0.7

#: Detections running now, and the torch thread setting they replaced (see :meth:`MTCNN._threads`).
_THREAD_LOCK = threading.Lock()
_THREAD_USERS = 0
_THREADS_BEFORE = 1

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


# --------------------------------------------------------------------------- results


@dataclass
class Face:
    """One detected face.

    ``box`` is (x1, y1, x2, y2) in pixels of the input frame; like facenet-pytorch it is not clipped, so
    it may reach slightly past the frame's edges. ``prob`` is O-Net's face probability. ``landmarks``
    are five (x, y) points: left eye, right eye, nose, left mouth corner, right mouth corner, where
    left and right are as seen in the image (the left eye has the smaller x for a frontal face).
    """

    box: tuple[float, float, float, float]
    prob: float
    landmarks: tuple[tuple[float, float], ...]

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)

    def to_dict(self) -> dict:
        return {
            "box": [float(v) for v in self.box],
            "prob": float(self.prob),
            "landmarks": [[float(x), float(y)] for x, y in self.landmarks],
        }


# --------------------------------------------------------------------------- input handling


def _as_frames(frames) -> list[torch.Tensor]:
    """Turn the accepted inputs into a list of (H, W, 3) uint8 CPU tensors (no copies where possible)."""
    if isinstance(frames, torch.Tensor):
        items = [frames] if frames.dim() == 3 else list(frames) if frames.dim() == 4 else None
        if items is None:
            raise MediaError(None, f"expected an (N, H, W, 3) tensor of frames, got shape {tuple(frames.shape)}")
    elif isinstance(frames, np.ndarray):
        if frames.ndim == 3:
            items = [frames]
        elif frames.ndim == 4:
            items = list(frames)
        else:
            raise MediaError(None, f"expected an (N, H, W, 3) array of frames, got shape {frames.shape}")
    elif isinstance(frames, Sequence) and not isinstance(frames, (str, bytes)):
        items = list(frames)
    else:
        raise MediaError(None, f"expected a list of (H, W, 3) uint8 RGB frames, got {type(frames).__name__}")

    out = []
    for k, item in enumerate(items):
        item = getattr(item, "image", item)  # fakelens.media.Frame
        if isinstance(item, np.ndarray):
            if item.dtype != np.uint8:
                raise MediaError(None, f"frame {k}: expected uint8 pixels, got {item.dtype}")
            # Read-only arrays (e.g. np.asarray of a PIL image) are copied: torch wants writable memory.
            item = np.ascontiguousarray(item) if item.flags.writeable else np.array(item, order="C")
            tensor = torch.from_numpy(item)
        elif isinstance(item, torch.Tensor):
            if item.dtype != torch.uint8:
                raise MediaError(None, f"frame {k}: expected uint8 pixels, got {item.dtype}")
            tensor = item
        else:
            raise MediaError(None, f"frame {k}: expected an (H, W, 3) uint8 array, got {type(item).__name__}")
        if tensor.dim() == 2:  # grayscale
            tensor = tensor[:, :, None].expand(-1, -1, 3)
        if tensor.dim() != 3 or tensor.shape[2] not in (3, 4):
            raise MediaError(None, f"frame {k}: expected shape (H, W, 3), got {tuple(tensor.shape)}")
        if tensor.shape[0] == 0 or tensor.shape[1] == 0:
            raise MediaError(None, f"frame {k}: empty frame of shape {tuple(tensor.shape)}")
        out.append(tensor[:, :, :3])
    return out


# --------------------------------------------------------------------------- detector


class MTCNN:
    """MTCNN face detector: one object, one :meth:`detect` call per batch of frames.

    Parameters
    ----------
    min_face_size : smallest face to look for, in pixels of the input frame (default 20). The main
        speed knob: P-Net's work grows with (1 / min_face_size)^2.
    thresholds : face-probability thresholds of P-Net, R-Net and O-Net (default (0.6, 0.7, 0.7)).
    scale_factor : ratio between consecutive pyramid scales (default 0.709, i.e. 1/sqrt(2) in area).
    detection_size : if set, frames whose longest side is larger are downscaled to this longest side
        before detection, and boxes and landmarks are mapped back to the input frame (default None:
        detect at full resolution). ``min_face_size`` stays in input pixels, but a downscaled frame
        cannot find faces smaller than 12 px at detection resolution, so the effective minimum becomes
        ``max(min_face_size, 12 * longest_side / detection_size)``; e.g. 24 px on 1280x720 with 640.
    device : ``"cpu"``, ``"cuda"``, a :class:`torch.device`, or None (default) for CUDA when available,
        else CPU.
    num_threads : torch threads while detecting on a CPU (default 1; None keeps the process setting).
        The cascade is thousands of small convolutions: a second thread gains little on an idle
        machine, and when another process holds a core, OpenMP's barriers make 2 threads ~9x slower
        than 1 (measured: 13.9 s against 1.6 s for 32 frames of 720p). Run processes, not threads.

    Example
    -------
    >>> detector = MTCNN(detection_size=640)
    >>> faces_per_frame = detector.detect([frame.image for frame in frames])
    """

    def __init__(
        self,
        min_face_size: int = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        scale_factor: float = 0.709,
        detection_size: int | None = None,
        device: str | torch.device | None = None,
        num_threads: int | None = 1,
    ):
        if not min_face_size > 0:
            raise InvalidArgument(f"min_face_size must be positive, got {min_face_size}")
        thresholds = tuple(float(t) for t in thresholds)
        if len(thresholds) != 3 or not all(0.0 <= t <= 1.0 for t in thresholds):
            raise InvalidArgument(f"thresholds must be three probabilities, got {thresholds}")
        if not 0.0 < scale_factor < 1.0:
            raise InvalidArgument(f"scale_factor must be in (0, 1), got {scale_factor}")
        if detection_size is not None and detection_size < PNET_WINDOW:
            raise InvalidArgument(f"detection_size must be at least {PNET_WINDOW} or None, got {detection_size}")
        self.min_face_size = min_face_size
        self.thresholds = thresholds
        self.scale_factor = float(scale_factor)
        self.detection_size = detection_size
        self.device = resolve_device(device)
        self.num_threads = num_threads
        # The networks take raw pixels (normalisation folded into conv1), in channels-last memory:
        # oneDNN runs these thin convolutions about twice as fast that way on CPU.
        self.pnet, self.rnet, self.onet = (
            fold_input_normalisation(load_network(name)).to(self.device, memory_format=torch.channels_last) for name in ("pnet", "rnet", "onet")
        )
        self._chunks = CPU_CHUNKS if self.device.type == "cpu" else GPU_CHUNKS

    def __repr__(self) -> str:
        return (
            f"MTCNN(min_face_size={self.min_face_size}, thresholds={self.thresholds}, "
            f"scale_factor={self.scale_factor}, detection_size={self.detection_size}, device='{self.device}')"
        )

    # ------------------------------------------------------------------ public

    def detect(self, frames, original_sizes: Sequence[tuple[int, int]] | None = None) -> list[list[Face]]:
        """Faces in each frame, most probable first.

        ``frames`` is a list of (H, W, 3) uint8 RGB arrays or tensors (sizes may differ; a list of
        :class:`fakelens.media.Frame` works too), an (N, H, W, 3) uint8 array or tensor, or a single
        (H, W, 3) frame. Returns one list per frame (empty where no face was found). Bad input raises
        :class:`fakelens.errors.MediaError`.

        ``original_sizes`` (one (height, width) per frame) says that the frames were already reduced with
        :meth:`reduce` from frames of those sizes: ``min_face_size`` and the boxes returned are then in
        pixels of the original frames, exactly as if those had been passed. This lets a caller downscale
        once, in another thread (the pipeline's decoder), and keep only the small copy for detection.
        """
        images = _as_frames(frames)
        if original_sizes is not None and len(original_sizes) != len(images):
            raise InvalidArgument(f"original_sizes has {len(original_sizes)} entries for {len(images)} frames")
        results: list[list[Face]] = [[] for _ in images]
        by_size: dict[tuple[int, int, int, int], list[int]] = {}
        for k, image in enumerate(images):
            full = (image.shape[0], image.shape[1]) if original_sizes is None else tuple(original_sizes[k])
            by_size.setdefault((image.shape[0], image.shape[1], int(full[0]), int(full[1])), []).append(k)
        with torch.inference_mode(), self._threads():
            for (height, width, full_h, full_w), indices in by_size.items():
                reduced = (height, width) != (full_h, full_w)
                scale = self._detection_scale(full_h, full_w)
                pixels = max(1, round(full_h * scale) * round(full_w * scale))
                step = max(1, MAX_BATCH_PIXELS // pixels)
                for start in range(0, len(indices), step):
                    chunk = indices[start : start + step]
                    batch = torch.stack([images[k] for k in chunk])
                    for k, faces in zip(chunk, self._detect_batch(batch, scale, (full_h, full_w) if reduced else None)):
                        results[k] = faces
        return results

    def full_resolution(self) -> MTCNN:
        """This detector without ``detection_size`` (the same networks and thresholds): for a second look at
        frames where the downscaled pass came up short (:func:`fakelens.faces.second_look`)."""
        return self.variant(detection_size=None)

    def variant(self, **settings) -> MTCNN:
        """A detector sharing this one's networks, with other ``detection_size`` or ``min_face_size``."""
        unknown = set(settings) - {"detection_size", "min_face_size"}
        if unknown:
            raise InvalidArgument(f"MTCNN.variant takes detection_size and min_face_size, not {', '.join(sorted(unknown))}")
        if all(getattr(self, k) == v for k, v in settings.items()):
            return self
        if settings.get("min_face_size", 1) <= 0:
            raise InvalidArgument(f"min_face_size must be positive, got {settings['min_face_size']}")
        other = copy.copy(self)
        for key, value in settings.items():
            setattr(other, key, value)
        return other

    def reduced_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) at which the cascade sees a frame of this size: downscaled to ``detection_size``."""
        scale = self._detection_scale(height, width)
        if scale >= 1.0:
            return height, width
        return max(1, round(height * scale)), max(1, round(width * scale))

    def reduce(self, image: np.ndarray) -> np.ndarray:
        """``image`` as the cascade sees it, for :meth:`detect`'s ``original_sizes``: area-downscaled to
        ``detection_size`` with the same call :meth:`detect` makes (so the faces found are identical), or
        ``image`` itself when it is small enough or the detector is not on a CPU (a GPU downscales better itself).
        """
        size = self.reduced_size(image.shape[0], image.shape[1])
        if size == image.shape[:2] or self.device.type != "cpu":
            return image
        return downscale(torch.from_numpy(np.ascontiguousarray(image))[None], size, self.device)[0].numpy()

    # ------------------------------------------------------------------ internals

    @contextlib.contextmanager
    def _threads(self):
        """Run with ``num_threads`` torch threads on a CPU, then restore the process setting.

        The setting is the process's, and face finders may detect in several threads at once: the first to
        enter sets it and the last to leave restores it (a plain save-and-restore in each would leave the
        process at 1 thread, or restore it under a detection still running)."""
        global _THREAD_USERS, _THREADS_BEFORE
        if self.device.type != "cpu" or not self.num_threads:
            yield
            return
        with _THREAD_LOCK:
            if _THREAD_USERS == 0:
                _THREADS_BEFORE = torch.get_num_threads()
                torch.set_num_threads(self.num_threads)
            _THREAD_USERS += 1
        try:
            yield
        finally:
            with _THREAD_LOCK:
                _THREAD_USERS -= 1
                if _THREAD_USERS == 0:
                    torch.set_num_threads(_THREADS_BEFORE)

    def _detection_scale(self, height: int, width: int) -> float:
        longest = max(height, width)
        if self.detection_size is None or longest <= self.detection_size:
            return 1.0
        return self.detection_size / longest

    def _detect_batch(self, batch: torch.Tensor, scale: float, original: tuple[int, int] | None = None) -> list[list[Face]]:
        """Run the cascade on (B, H, W, 3) uint8 frames of one size (already reduced from ``original`` if given)."""
        full_h, full_w = original or batch.shape[1:3]
        min_face = float(self.min_face_size)
        if original is not None:
            frames = batch.to(self.device)
        elif scale < 1.0:
            # Downscale to 8-bit frames, as if the video had been decoded at that size.
            size = (max(1, round(full_h * scale)), max(1, round(full_w * scale)))
            frames = downscale(batch, size, self.device)
        else:
            frames = batch.to(self.device)
        height, width = frames.shape[1:3]
        sx, sy = width / full_w, height / full_h
        if scale < 1.0:
            # Below 12 px at detection size P-Net would need an upscaled pyramid: pointless work.
            min_face = max(min_face * min(sx, sy), float(PNET_WINDOW))

        # One summed-area table per frame serves every pyramid level and every R-Net/O-Net crop.
        tables = integral(frames)
        del frames
        boxes, frame_ids = self._stage_pnet(tables, min_face)
        points = torch.zeros(0, 5, 2, device=self.device)
        scores = torch.zeros(0, device=self.device)
        if len(boxes):
            boxes, frame_ids = self._stage_rnet(tables, boxes, frame_ids)
            if len(boxes):
                boxes, scores, points, frame_ids = self._stage_onet(tables, boxes, frame_ids)

        to_frame = torch.tensor([sx, sy], dtype=torch.float64, device=boxes.device)
        boxes = (boxes.double().reshape(-1, 2, 2) / to_frame).reshape(-1, 4).cpu().numpy()
        points = (points.double() / to_frame).cpu().numpy()
        scores = scores.double().cpu().numpy()
        frame_ids = frame_ids.cpu().numpy()

        faces: list[list[Face]] = [[] for _ in range(len(batch))]
        for order in np.argsort(-scores, kind="stable"):
            faces[frame_ids[order]].append(
                Face(
                    box=tuple(float(v) for v in boxes[order]),
                    prob=float(scores[order]),
                    landmarks=tuple((float(x), float(y)) for x, y in points[order]),
                )
            )
        return faces

    def _stage_pnet(self, tables: torch.Tensor, min_face: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Candidate boxes (K, 4) and their frame indices (K,) from P-Net over the image pyramid."""
        height, width = tables.shape[1] - 1, tables.shape[2] - 1
        all_boxes, all_ids = [], []
        for scale in pyramid_scales(height, width, min_face, self.scale_factor):
            size = (int(height * scale + 1), int(width * scale + 1))
            # Frames go through P-Net a few at a time so that each call's activations stay in cache.
            step = max(1, self._chunks["pnet"] // (size[0] * size[1]))
            plan = resize_plan(tables, *size)
            outputs = [self.pnet(area_resize(tables[i : i + step], plan)) for i in range(0, len(tables), step)]
            reg, prob = (torch.cat(parts) for parts in zip(*outputs))
            frame_ids, ys, xs = torch.nonzero(prob >= self.thresholds[0], as_tuple=True)
            if len(frame_ids) == 0:
                continue
            # Each output cell is a 12x12 window at stride 2 in the scaled image.
            corner = torch.stack([xs, ys], dim=1).to(torch.float32)
            q1 = ((2 * corner + 1) / scale).floor()
            q2 = ((2 * corner + PNET_WINDOW) / scale).floor()
            boxes = torch.cat([q1, q2], dim=1)
            scores = prob[frame_ids, ys, xs]
            offsets = reg[frame_ids, :, ys, xs]
            keep = batched_nms(boxes, scores, frame_ids, NMS_PNET_SCALE)
            all_boxes.append(torch.cat([boxes[keep], scores[keep, None], offsets[keep]], dim=1))
            all_ids.append(frame_ids[keep])

        if not all_boxes:
            return torch.zeros(0, 4, device=tables.device), torch.zeros(0, dtype=torch.long, device=tables.device)
        cand = torch.cat(all_boxes)
        frame_ids = torch.cat(all_ids)
        keep = batched_nms(cand[:, :4], cand[:, 4], frame_ids, NMS_PNET_ALL)
        cand, frame_ids = cand[keep], frame_ids[keep]
        # P-Net offsets are fractions of the (exclusive) window size.
        w = cand[:, 2] - cand[:, 0]
        h = cand[:, 3] - cand[:, 1]
        boxes = cand[:, :4] + cand[:, 5:9] * torch.stack([w, h, w, h], dim=1)
        return square(boxes), frame_ids

    def _run_on_crops(self, net: nn.Module, tables, boxes, frame_ids, size: int, chunk: int):
        """``net``'s outputs on the crops of the boxes whose window is not empty, and which boxes those are.

        Crops are cut and scored ``chunk`` at a time, so that on a CPU the activations stay in cache
        (one call on thousands of crops runs about twice slower).
        """
        height, width = tables.shape[1] - 1, tables.shape[2] - 1
        windows = crop_windows(boxes, height, width)
        valid = torch.nonzero((windows[:, 2] > windows[:, 0]) & (windows[:, 3] > windows[:, 1])).squeeze(1)
        # Visit the windows frame by frame, top to bottom, so the table rows they read stay in cache.
        valid = valid[torch.argsort(frame_ids[valid] * (height + 1) + windows[valid, 1], stable=True)]
        windows, ids = windows[valid], frame_ids[valid]
        outputs = [net(area_crops(tables, ids[i : i + chunk], windows[i : i + chunk], size)) for i in range(0, len(valid), chunk)]
        return [torch.cat(parts) for parts in zip(*outputs)], valid

    def _stage_rnet(self, tables, boxes, frame_ids):
        (reg, prob), valid = self._run_on_crops(self.rnet, tables, boxes, frame_ids, 24, self._chunks["rnet"])
        boxes, frame_ids = boxes[valid], frame_ids[valid]
        passed = prob > self.thresholds[1]
        boxes, frame_ids, reg, prob = boxes[passed], frame_ids[passed], reg[passed], prob[passed]
        keep = batched_nms(boxes, prob, frame_ids, NMS_RNET)
        boxes = regress(boxes[keep], reg[keep])
        return square(boxes), frame_ids[keep]

    def _stage_onet(self, tables, boxes, frame_ids):
        (reg, marks, prob), valid = self._run_on_crops(self.onet, tables, boxes, frame_ids, 48, self._chunks["onet"])
        boxes, frame_ids = boxes[valid], frame_ids[valid]
        passed = prob > self.thresholds[2]
        boxes, frame_ids, reg, marks, prob = boxes[passed], frame_ids[passed], reg[passed], marks[passed], prob[passed]
        # Landmarks are fractions of the (inclusive) box O-Net saw, in MATLAB's 1-based pixels.
        w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        xs = boxes[:, 0:1] + w * marks[:, :5] - 1
        ys = boxes[:, 1:2] + h * marks[:, 5:] - 1
        points = torch.stack([xs, ys], dim=2)
        boxes = regress(boxes, reg)
        keep = nms_min(boxes, prob, frame_ids, NMS_ONET_MIN).to(boxes.device)
        return boxes[keep], prob[keep], points[keep], frame_ids[keep]


__all__ = ["Face", "MTCNN", "LANDMARK_NAMES"]
