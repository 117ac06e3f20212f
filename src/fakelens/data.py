"""Training data: manifest reading and writing, a Dataset of face crops, augmentations and balanced sampling.

* :func:`read_manifest` reads a preprocessing manifest (see docs/ARCHITECTURE.md, "Manifest") into
  :class:`ManifestRow` objects with absolute crop paths; :func:`write_manifest` writes one atomically;
  :func:`manifest_from_face_images` turns already-cropped face images (e.g. the crops in
  ``../shared/data/images``) into 224x224 crops plus a manifest.
* :class:`CropDataset` yields ``(image uint8 (3, 224, 224), target float, index)``. Normalisation happens
  on the device, per batch, with :func:`normalize_batch` (the same ImageNet mean/std as
  :func:`fakelens.model.preprocess_crops`): uint8 batches are 4x cheaper to move to a GPU.
* Randomness is keyed, not streamed: the augmentation of a sample depends only on
  ``(seed, epoch, index, draw)``, so results do not depend on the number of loader workers and a resumed
  run sees exactly the images an uninterrupted run would have seen.
* :class:`BalancedSampler` draws, with replacement, half REAL and half FAKE samples per epoch (in ``sbi``
  + ``dataset`` mode the FAKE half is shared between real fakes and self-blended ones), and shards the draw
  across DistributedDataParallel ranks.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from fakelens import atomic
from fakelens.errors import FakelensError
from fakelens.model import IMAGENET_MEAN, IMAGENET_STD, INPUT_SIZE
from fakelens.sbi import SBIConfig, blend_pair_real, self_blend

MANIFEST_COLUMNS = [
    "crop_path", "video", "frame_index", "timestamp", "track", "x1", "y1", "x2", "y2", "prob",
    "landmarks", "crop_landmarks", "label", "split", "group", "method", "dataset",
]  # fmt: skip
REQUIRED_COLUMNS = ("crop_path", "label")
LABELS = ("real", "fake")
SPLITS = ("train", "val", "test")

#: What a dataset item is: a REAL crop, a FAKE crop from the manifest, or a self-blended pseudo-fake of a REAL crop.
KINDS = ("real", "fake", "sbi")
#: Purposes keep the random streams of training augmentation and of fixed validation SBI apart.
PURPOSE_TRAIN, PURPOSE_EVAL_SBI = 0, 1


class ManifestError(FakelensError):
    """A manifest is missing, unreadable or lacks what training/evaluation needs."""


@dataclass
class ManifestRow:
    """One crop of a manifest; ``crop_path`` is absolute, ``crop_landmarks`` is (5, 2) crop pixels or None."""

    crop_path: Path
    label: str
    split: str = ""
    video: str = ""
    frame_index: int = 0
    group: str = ""
    method: str = ""
    dataset: str = ""
    crop_landmarks: list | None = None

    @property
    def target(self) -> int:
        """1 for FAKE, 0 for REAL (the training target)."""
        return 1 if self.label == "fake" else 0

    @property
    def video_key(self) -> str:
        """Video identity for video-level aggregation: ``dataset:video`` (the crop path when no video is given)."""
        video = self.video or str(self.crop_path)
        return f"{self.dataset}:{video}" if self.dataset else video


def _parse_landmarks(text: str) -> list | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        points = json.loads(text)
        array = np.asarray(points, dtype=np.float64)
    except (ValueError, TypeError):
        return None
    if array.shape != (5, 2) or not np.isfinite(array).all():
        return None
    return array.tolist()


def read_manifest(path: str | Path, split: str | Sequence[str] | None = None) -> list[ManifestRow]:
    """Rows of a manifest CSV, optionally only those of ``split`` (a name or a list of names; default all).

    Rows labelled anything but ``real``/``fake`` are skipped (unlabelled crops cannot train or be scored).
    Raises :class:`ManifestError` for a missing file, missing columns or an empty selection.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            columns = reader.fieldnames or []
            raw_rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ManifestError(f"{path}: cannot read manifest ({exc})") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ManifestError(f"{path}: not a fakelens manifest (missing columns: {', '.join(missing)})")
    wanted = None if split is None else ({split} if isinstance(split, str) else set(split))
    root = path.resolve().parent
    rows = []
    for line, raw in enumerate(raw_rows, start=2):
        label = (raw.get("label") or "").strip().lower()
        if label not in LABELS:
            continue
        row_split = (raw.get("split") or "").strip().lower()
        if wanted is not None and row_split not in wanted:
            continue
        crop = (raw.get("crop_path") or "").strip()
        if not crop:
            raise ManifestError(f"{path}:{line}: empty crop_path")
        video = (raw.get("video") or "").strip()
        try:
            frame_index = int(float(raw.get("frame_index") or 0))
        except ValueError:
            frame_index = 0
        rows.append(
            ManifestRow(
                crop_path=(root / crop).resolve(),
                label=label,
                split=row_split,
                video=video,
                frame_index=frame_index,
                group=(raw.get("group") or "").strip() or video or crop,
                method=(raw.get("method") or "").strip(),
                dataset=(raw.get("dataset") or "").strip(),
                crop_landmarks=_parse_landmarks(raw.get("crop_landmarks", "")),
            )
        )
    if wanted is not None and not rows:
        raise ManifestError(f"{path}: no labelled rows in split {'/'.join(sorted(wanted))}")
    return rows


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write text to ``path`` atomically (see :mod:`fakelens.atomic`)."""
    return atomic.write_bytes(path, text)


def write_manifest(rows: Iterable[dict], path: str | Path) -> Path:
    """Write manifest rows (dicts keyed by :data:`MANIFEST_COLUMNS`; missing keys left empty) atomically.

    Lists in ``landmarks``/``crop_landmarks`` are written as JSON.
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        out = dict(row)
        for key in ("landmarks", "crop_landmarks"):
            if isinstance(out.get(key), (list, tuple, np.ndarray)):
                out[key] = json.dumps(np.asarray(out[key], dtype=float).round(2).tolist(), separators=(",", ":"))
        writer.writerow({k: ("" if out.get(k) is None else out.get(k)) for k in MANIFEST_COLUMNS})
    return atomic_write_text(path, buffer.getvalue())


def split_by_group(
    groups: Sequence[str],
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    labels: Sequence[str] | None = None,
) -> dict[str, str]:
    """Assign every leakage group wholly to train/val/test, so no group is on two sides.

    Groups are shuffled with ``seed`` and dealt out greedily to the split furthest below its target share of
    *crops* (default 70/15/15). With ``labels`` (one per entry of ``groups``), REAL and FAKE crops are
    balanced separately, so val and test get both classes whenever the groups allow it.
    """
    if len(fractions) != 3 or min(fractions) < 0 or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise ValueError("fractions must be three non-negative numbers summing to 1")
    labels = list(labels) if labels is not None else ["any"] * len(groups)
    counts: dict[str, dict[str, int]] = {}
    for group, label in zip(groups, labels):
        counts.setdefault(group, {}).setdefault(label, 0)
        counts[group][label] += 1
    classes = sorted({lab for lab in labels})
    totals = {c: sum(v.get(c, 0) for v in counts.values()) for c in classes}
    names = sorted(counts)
    order = np.random.default_rng(seed).permutation(len(names))
    have = {s: {c: 0 for c in classes} for s in SPLITS}
    assignment = {}
    for i in order:
        group = names[i]

        def deficit(split: str) -> float:
            frac = fractions[SPLITS.index(split)]
            return sum(
                (frac * totals[c] - have[split][c]) / max(totals[c], 1) for c in classes if counts[group].get(c, 0)
            )

        choice = max((s for s in SPLITS if fractions[SPLITS.index(s)] > 0), key=deficit)
        assignment[group] = choice
        for c, n in counts[group].items():
            have[choice][c] += n
    return assignment


def manifest_from_face_images(
    entries: Iterable[dict],
    out_dir: str | Path,
    size: int = INPUT_SIZE,
    manifest_name: str = "manifest.csv",
    detector=None,
    progress: bool = False,
) -> Path:
    """Resize already-cropped face images to ``size`` x ``size`` PNGs under ``out_dir/crops`` and write a manifest.

    Each entry needs ``path`` and ``label``; ``split``, ``group``, ``method``, ``dataset``, ``video`` and
    ``frame_index`` are copied when present (``video`` defaults to the image's folder, the usual layout of
    frames extracted per video).

    ``detector`` (default None) is an optional :class:`fakelens.mtcnn.MTCNN` (anything with
    ``detect([image]) -> [[Face]]``): the largest face found on each resized crop gives its ``crop_landmarks``,
    which shape the SBI masks. Without it (or when no face is found) landmarks are left empty (``[]``) and
    SBI falls back to its centred ellipse. ``progress`` (default False) shows a progress bar.
    """
    from tqdm import tqdm

    from fakelens.media import read_image

    out_dir = Path(out_dir)
    crop_dir = out_dir / "crops"
    crop_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    entries = list(entries)
    for i, entry in enumerate(tqdm(entries, desc="crops", unit="img", disable=not progress)):
        source = Path(entry["path"])
        image = read_image(source)
        interpolation = cv2.INTER_AREA if min(image.shape[:2]) > size else cv2.INTER_CUBIC
        crop = cv2.resize(image, (size, size), interpolation=interpolation)
        crop_landmarks = []
        if detector is not None:
            faces = detector.detect([crop])[0]
            if faces:
                largest = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
                crop_landmarks = np.asarray(largest.landmarks, dtype=np.float64).tolist()
        name = f"{i:05d}_{source.parent.name}_{source.stem}.png"
        tmp = crop_dir / (name + ".tmp.png")
        if not cv2.imwrite(str(tmp), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)):
            raise ManifestError(f"{tmp}: could not write crop")
        os.replace(tmp, crop_dir / name)
        rows.append(
            {
                "crop_path": f"crops/{name}",
                "video": entry.get("video") or str(source.parent.name),
                "frame_index": entry.get("frame_index", 0),
                "label": entry["label"],
                "split": entry.get("split", "train"),
                "group": entry.get("group") or entry.get("video") or source.parent.name,
                "method": entry.get("method", ""),
                "dataset": entry.get("dataset", ""),
                # The whole image is the face crop: box = the image, no detector probability or frame time.
                "timestamp": 0.0, "track": 0, "prob": 1.0,
                "x1": 0, "y1": 0, "x2": image.shape[1], "y2": image.shape[0],
                "landmarks": (np.asarray(crop_landmarks) * (image.shape[1] / size, image.shape[0] / size)).tolist()
                if crop_landmarks else [],
                "crop_landmarks": crop_landmarks,
            }  # fmt: skip
        )
    return write_manifest(rows, out_dir / manifest_name)


# --------------------------------------------------------------------------- images and augmentation


def load_crop(row: ManifestRow, size: int = INPUT_SIZE) -> tuple[np.ndarray, np.ndarray | None]:
    """The crop as (size, size, 3) uint8 RGB, and its landmarks rescaled to it (or None).

    Raises :class:`fakelens.errors.MediaError` when the file cannot be read.
    """
    from fakelens.media import read_image

    image = read_image(row.crop_path)
    landmarks = None if row.crop_landmarks is None else np.asarray(row.crop_landmarks, dtype=np.float64)
    h, w = image.shape[:2]
    if (h, w) != (size, size):
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if min(h, w) > size else cv2.INTER_CUBIC)
        if landmarks is not None:
            landmarks = landmarks * (size / w, size / h)
    return image, landmarks


@dataclass
class Augmenter:
    """Augmentations that matter for deepfake detection, each applied with its own probability.

    Geometry and colour make the model robust to pose and lighting; JPEG re-compression, blur and
    downscale-upscale teach it that compression and resampling are NOT evidence of manipulation (videos on
    the web are re-encoded many times), which is the main way such detectors fail in the wild.
    """

    hflip_p: float = 0.5
    affine_p: float = 0.5
    max_rotate: float = 8.0  #: degrees
    max_scale: float = 0.08  #: 1 +- this
    max_translate: float = 0.04  #: fraction of the side
    color_p: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 6.0  #: degrees
    jpeg_p: float = 0.5  #: the SBI reference's ImageCompression(40, 100, p=0.5), reaching down to heavy compression
    jpeg_quality: tuple[int, int] = (30, 100)
    blur_p: float = 0.1
    blur_sigma: tuple[float, float] = (0.3, 1.5)
    downscale_p: float = 0.25
    downscale: tuple[float, float] = (0.3, 0.85)
    #: grayscale copies, so a gray photo or clip is neither a REAL nor a FAKE cue
    grayscale_p: float = 0.1
    #: the face shrunk onto a black canvas (as dataset tools export crops), so black borders are no cue either
    canvas_p: float = 0.1
    canvas_scale: tuple[float, float] = (0.6, 0.9)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = image.shape[:2]
        out = image
        if rng.random() < self.hflip_p:
            out = out[:, ::-1]
        if rng.random() < self.affine_p:
            scale = 1.0 + rng.uniform(-self.max_scale, self.max_scale)
            matrix = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-self.max_rotate, self.max_rotate), scale)
            matrix[:, 2] += rng.uniform(-self.max_translate, self.max_translate, size=2) * (w, h)
            out = cv2.warpAffine(np.ascontiguousarray(out), matrix, (w, h), borderMode=cv2.BORDER_REFLECT_101)
        if rng.random() < self.color_p:
            out = self._colour(out, rng)
        if rng.random() < self.canvas_p:
            out = self._canvas(out, rng)
        if rng.random() < self.grayscale_p:
            gray = cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_RGB2GRAY)
            out = np.repeat(gray[..., None], 3, axis=2)
        if rng.random() < self.downscale_p:
            factor = rng.uniform(*self.downscale)
            small = cv2.resize(np.ascontiguousarray(out), (max(8, int(w * factor)), max(8, int(h * factor))), interpolation=cv2.INTER_AREA)
            out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        if rng.random() < self.blur_p:
            out = cv2.GaussianBlur(np.ascontiguousarray(out), (0, 0), rng.uniform(*self.blur_sigma))
        if rng.random() < self.jpeg_p:
            quality = int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1))
            ok, buffer = cv2.imencode(".jpg", np.ascontiguousarray(out[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
            if ok:
                out = cv2.imdecode(buffer, cv2.IMREAD_COLOR)[..., ::-1]
        return np.ascontiguousarray(out)

    def _canvas(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = image.shape[:2]
        scale = rng.uniform(*self.canvas_scale)
        sw, sh = max(8, int(w * scale)), max(8, int(h * scale))
        x0, y0 = int(rng.integers(0, w - sw + 1)), int(rng.integers(0, h - sh + 1))
        canvas = np.zeros_like(image)
        canvas[y0 : y0 + sh, x0 : x0 + sw] = cv2.resize(np.ascontiguousarray(image), (sw, sh), interpolation=cv2.INTER_AREA)
        return canvas

    def _colour(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = image.astype(np.float32) / 255.0
        out = out * (1.0 + rng.uniform(-self.brightness, self.brightness))
        mean = out.mean()
        out = (out - mean) * (1.0 + rng.uniform(-self.contrast, self.contrast)) + mean
        out = np.clip(out, 0, 1)
        hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-self.hue, self.hue)) % 360.0
        hsv[..., 1] = np.clip(hsv[..., 1] * (1.0 + rng.uniform(-self.saturation, self.saturation)), 0, 1)
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def sample_rng(seed: int, purpose: int, epoch: int, index: int, draw: int = 0, stream: int = 0) -> np.random.Generator:
    """The generator for one sample: a pure function of its key, whatever process or worker asks."""
    key = [int(seed), int(purpose), int(epoch), int(index), int(draw)] + ([int(stream)] if stream else [])
    return np.random.default_rng(key)


class CropDataset(Dataset):
    """Face crops of a manifest as ``(uint8 tensor (3, S, S), target float32, item index)``.

    Parameters
    ----------
    rows : manifest rows.
    items : ``(row index, kind)`` pairs, kind in :data:`KINDS` (default: every row once, kind = its label).
        ``"sbi"`` items turn their (REAL) row into a self-blended pseudo-fake.
    augment : an :class:`Augmenter`, or None (default) for none.
    sbi : SBI transform strengths (default :class:`SBIConfig()`).
    seed : base seed of the keyed randomness (default 0).
    purpose : :data:`PURPOSE_TRAIN` (default) or :data:`PURPOSE_EVAL_SBI` (fixed pseudo-fakes for validation).
    size : crop side (default 224).
    paired : False (default) draws every item's randomness on its own. True keys it on ``(row, draw)``
        instead, so a REAL item and the SBI item of the same row drawn with the same draw number are the two
        halves of one self-blended pair - the real target and its own pseudo-fake, with identical
        augmentation - as the SBI paper trains (see :class:`PairedSampler`).

    A sampler may yield ``(index, draw)`` pairs: the draw number separates two draws of one item in an epoch.
    """

    def __init__(
        self,
        rows: Sequence[ManifestRow],
        items: Sequence[tuple[int, str]] | None = None,
        augment: Augmenter | None = None,
        sbi: SBIConfig | None = None,
        seed: int = 0,
        purpose: int = PURPOSE_TRAIN,
        size: int = INPUT_SIZE,
        paired: bool = False,
    ):
        self.rows = list(rows)
        self.paired = paired
        self.items = list(items) if items is not None else [(i, r.label) for i, r in enumerate(self.rows)]
        for _, kind in self.items:
            if kind not in KINDS:
                raise ValueError(f"unknown item kind {kind!r}")
        self.augment = augment
        self.sbi = sbi or SBIConfig()
        self.seed = seed
        self.purpose = purpose
        self.size = size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Key the randomness of the coming epoch (call before creating the epoch's DataLoader iterator)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def targets(self) -> np.ndarray:
        return np.array([0 if kind == "real" else 1 for _, kind in self.items], dtype=np.int64)

    @property
    def kinds(self) -> list[str]:
        return [kind for _, kind in self.items]

    def get_image(self, key) -> tuple[np.ndarray, int]:
        """The (S, S, 3) uint8 image of an item after SBI and augmentation, and its target."""
        index, draw = key if isinstance(key, (tuple, list)) else (key, 0)
        row_index, kind = self.items[index]
        image, landmarks = load_crop(self.rows[row_index], self.size)
        # The evaluation pseudo-fakes must not change between epochs, so their key ignores the epoch.
        epoch = self.epoch if self.purpose == PURPOSE_TRAIN else 0
        if not self.paired:
            rng = sample_rng(self.seed, self.purpose, epoch, index, draw)
            if kind == "sbi":
                image = self_blend(image, landmarks, rng, self.sbi).image
            if self.augment is not None:
                image = self.augment(image, rng)
            return image, (0 if kind == "real" else 1)
        # Both halves of a pair see the same generators: the same blend side and the same augmentation.
        blend_rng = sample_rng(self.seed, self.purpose, epoch, row_index, draw, 1)
        if kind == "sbi":
            image = self_blend(image, landmarks, blend_rng, self.sbi).image
        elif kind == "real":
            image = blend_pair_real(image, blend_rng, self.sbi)
        if self.augment is not None:
            image = self.augment(image, sample_rng(self.seed, self.purpose, epoch, row_index, draw, 2))
        return image, (0 if kind == "real" else 1)

    def __getitem__(self, key):
        index = key[0] if isinstance(key, (tuple, list)) else key
        image, target = self.get_image(key)
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).contiguous()
        return tensor, torch.tensor(float(target)), int(index)


def normalize_batch(images: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float ImageNet-normalised, on the images' device (as :func:`preprocess_crops`)."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    out = (images.float().div_(255.0) - mean) / std
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out


# --------------------------------------------------------------------------- sampling


def kind_weights(kinds: Sequence[str], sbi_share: float = 0.5) -> np.ndarray:
    """Per-item sampling weights: REAL and FAKE each get half the mass; within FAKE, self-blended items get
    ``sbi_share`` of it when manifest fakes are present too (default 0.5). Missing classes give their mass away."""
    kinds = list(kinds)
    counts = {k: kinds.count(k) for k in KINDS}
    fake_mass = {"fake": 1.0 - sbi_share, "sbi": sbi_share}
    if not counts["fake"]:
        fake_mass = {"fake": 0.0, "sbi": 1.0}
    if not counts["sbi"]:
        fake_mass = {"fake": 1.0, "sbi": 0.0}
    has_real = counts["real"] > 0
    has_fake = counts["fake"] + counts["sbi"] > 0
    class_mass = {"real": 0.5 if has_fake else 1.0, "fake": 0.5 if has_real else 1.0}
    weights = np.empty(len(kinds), dtype=np.float64)
    for i, kind in enumerate(kinds):
        if kind == "real":
            weights[i] = class_mass["real"] / counts["real"]
        else:
            weights[i] = class_mass["fake"] * fake_mass[kind] / counts[kind]
    return weights


class BalancedSampler(Sampler):
    """Class-balanced sampling with replacement (the WeightedRandomSampler idea), sharded over DDP ranks.

    Parameters
    ----------
    weights : per-item weights (e.g. :func:`kind_weights`).
    num_samples : draws per epoch over all ranks (default: the number of items).
    seed : base seed; each epoch's draw uses ``seed + epoch`` (set with :meth:`set_epoch`).
    rank, world_size : this process's shard (default 0 of 1).
    balanced : False draws a plain permutation instead (no replacement, weights ignored).

    Yields ``(index, draw)`` pairs, ``draw`` being the position in the epoch's global draw.
    """

    def __init__(
        self,
        weights: Sequence[float],
        num_samples: int | None = None,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        balanced: bool = True,
    ):
        self.weights = torch.as_tensor(np.asarray(weights, dtype=np.float64))
        self.num_items = len(self.weights)
        total = int(num_samples) if num_samples else self.num_items
        self.per_rank = math.ceil(total / world_size)
        self.total = self.per_rank * world_size
        self.seed, self.rank, self.world_size, self.balanced = seed, rank, world_size, balanced
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.per_rank

    def draw(self) -> list[int]:
        """The epoch's global draw of item indices (identical on every rank)."""
        generator = torch.Generator().manual_seed(int(self.seed) * 1_000_003 + self.epoch)
        if self.balanced:
            return torch.multinomial(self.weights, self.total, replacement=True, generator=generator).tolist()
        repeats = math.ceil(self.total / self.num_items)
        order = torch.cat([torch.randperm(self.num_items, generator=generator) for _ in range(repeats)])
        return order[: self.total].tolist()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = self.draw()
        for position in range(self.rank, self.total, self.world_size):
            yield indices[position], position


class PairedSampler(Sampler):
    """Self-blended pairs: draws REAL rows uniformly with replacement and yields, for each, its REAL item then
    its SBI item under one draw number, so with an even batch size every batch holds whole pairs (the SBI
    paper's batches of reals and their own pseudo-fakes). Sharded over DDP ranks pair by pair.

    Parameters
    ----------
    items : the dataset's ``(row, kind)`` items; every REAL row needs an SBI item.
    num_samples : images per epoch over all ranks (default: the number of items); rounded up to pairs.
    seed, rank, world_size : as :class:`BalancedSampler`.
    """

    def __init__(self, items: Sequence[tuple[int, str]], num_samples: int | None = None, seed: int = 0, rank: int = 0, world_size: int = 1):
        real = {row: k for k, (row, kind) in enumerate(items) if kind == "real"}
        sbi = {row: k for k, (row, kind) in enumerate(items) if kind == "sbi"}
        self.pairs = [(real[row], sbi[row]) for row in sorted(real) if row in sbi]
        if not self.pairs:
            raise ValueError("paired sampling needs REAL rows with SBI items")
        total_pairs = math.ceil((int(num_samples) if num_samples else len(items)) / 2)
        self.per_rank = math.ceil(total_pairs / world_size)
        self.total = self.per_rank * world_size
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return 2 * self.per_rank

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = torch.Generator().manual_seed(int(self.seed) * 1_000_003 + self.epoch)
        chosen = torch.randint(len(self.pairs), (self.total,), generator=generator).tolist()
        for position in range(self.rank, self.total, self.world_size):
            real_item, sbi_item = self.pairs[chosen[position]]
            yield real_item, position
            yield sbi_item, position


def worker_init(_worker_id: int) -> None:
    """Loader workers: one thread each, since the workers themselves are the parallelism."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def collate(batch):
    """Stack ``(image, target, index)`` items into uint8 images, float targets and int64 indices."""
    images, targets, indices = zip(*batch)
    return torch.stack(images), torch.stack(targets), torch.as_tensor(indices, dtype=torch.int64)


@dataclass
class SplitData:
    """Rows of one split with the dataset items built from them (kept together for reports)."""

    rows: list[ManifestRow] = field(default_factory=list)
    items: list[tuple[int, str]] = field(default_factory=list)
