"""Stage 2: frames -> faces. The MTCNN cascade (Zhang et al. 2016) in PyTorch, batched for speed.

Three small networks run one after the other:

* **P-Net** slides over an image pyramid and proposes candidate face windows,
* **R-Net** re-scores 24x24 crops of the candidates and refines their boxes,
* **O-Net** re-scores 48x48 crops, refines the boxes again and places five landmarks.

The weights are the original ones, as shipped in the PyPI package ``mtcnn`` (Keras arrays in
``mtcnn/assets/weights/{pnet,rnet,onet}.lz4``). We read those files through ``importlib.metadata``
and never import ``mtcnn`` itself, which needs TensorFlow. The arithmetic follows facenet-pytorch 2.6
(same weights, same pyramid, same box rounding), so both give the same faces; see
``benchmarks/mtcnn_reference.py`` for the measured agreement and speed.

What makes it fast (about 2.3x facenet-pytorch on a CPU, with the same detections; the benchmark has
the numbers):

* one summed-area table per frame serves every pyramid level and every R-Net/O-Net crop: each output
  pixel is a box sum read from four table corners, exactly what ``interpolate(mode="area")`` gives,
  at a cost that follows the output's size (facenet-pytorch resizes the whole frame per level, and
  each candidate box in a Python loop);
* frames of one size are stacked; R-Net and O-Net each see the candidates of all frames together;
* on a CPU, every network call is kept cache-sized (P-Net a frame or a few per level, R-Net 256 crops,
  O-Net 32), channels-last, with the input normalisation folded into the first convolution: one call
  on thousands of crops runs about twice slower than the same work in small calls;
* an optional ``detection_size`` caps the resolution the cascade sees, so 1080p or 4K frames cost
  about what a 640 px frame does; ``min_face_size`` is the main speed knob (P-Net's work grows as
  its inverse square).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms

from fakelens.errors import CheckpointError, MediaError
from fakelens.device import resolve_device

#: PyPI distribution that ships the original MTCNN weights.
WEIGHTS_DISTRIBUTION = "mtcnn"
#: P-Net sees 12x12 windows: a face of ``min_face_size`` pixels is scaled to 12 px at the pyramid's base.
PNET_WINDOW = 12
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


# --------------------------------------------------------------------------- networks


class MaxPool2x2Ceil(nn.Module):
    """``nn.MaxPool2d(2, 2, ceil_mode=True)`` as the maximum of four strided views.

    Same values; 2-4x faster on CPU for P-Net's large feature maps, where PyTorch's pooling kernel
    also computes indices nobody needs.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[2:]
        if height % 2 or width % 2:  # ceil mode: a last, partial window
            x = F.pad(x, (0, width % 2, 0, height % 2), value=float("-inf"))
        top = torch.maximum(x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2])
        bottom = torch.maximum(x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2])
        return torch.maximum(top, bottom)


class PNet(nn.Module):
    """Proposal network: fully convolutional, one 12x12 window per output cell (stride 2)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = MaxPool2x2Ceil()
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)  # face / not face
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)  # box regression

    #: Keras weight list order -> our parameter names (heads come box first, then class).
    KERAS_ORDER = (
        "conv1.weight", "conv1.bias", "prelu1.weight",
        "conv2.weight", "conv2.bias", "prelu2.weight",
        "conv3.weight", "conv3.bias", "prelu3.weight",
        "conv4_2.weight", "conv4_2.bias", "conv4_1.weight", "conv4_1.bias",
    )  # fmt: skip

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(box regression (N, 4, h, w), face probability (N, h, w))."""
        x = self.prelu1(self.conv1(x))
        x = self.pool1(x)
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        # Both 1x1 heads as one matrix product over channels (with channels-last input the permute is
        # free; PyTorch runs such thin 1x1 convolutions on a slow path). A 2-way softmax is a sigmoid
        # of the logit difference, so the class head shrinks to one output.
        cls_w, cls_b = self.conv4_1.weight.flatten(1), self.conv4_1.bias
        weight = torch.cat([cls_w[1:] - cls_w[:1], self.conv4_2.weight.flatten(1)])
        bias = torch.cat([cls_b[1:] - cls_b[:1], self.conv4_2.bias])
        out = F.linear(x.permute(0, 2, 3, 1), weight, bias)  # (N, h, w, 5)
        return out[..., 1:].permute(0, 3, 1, 2), torch.sigmoid(out[..., 0])


class RNet(nn.Module):
    """Refinement network on 24x24 crops."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    KERAS_ORDER = (
        "conv1.weight", "conv1.bias", "prelu1.weight",
        "conv2.weight", "conv2.bias", "prelu2.weight",
        "conv3.weight", "conv3.bias", "prelu3.weight",
        "dense4.weight", "dense4.bias", "prelu4.weight",
        "dense5_2.weight", "dense5_2.bias", "dense5_1.weight", "dense5_1.bias",
    )  # fmt: skip

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(box regression (N, 4), face probability (N,))."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        # The dense weights index features in (x, y, channel) order, as the original model (trained on
        # transposed images) flattened them; facenet-pytorch does the same permute.
        x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)
        x = self.prelu4(self.dense4(x))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)[:, 1]


class ONet(nn.Module):
    """Output network on 48x48 crops: score, box and five landmarks."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)  # face / not face
        self.dense6_2 = nn.Linear(256, 4)  # box regression
        self.dense6_3 = nn.Linear(256, 10)  # landmarks: x1..x5, y1..y5 relative to the box

    KERAS_ORDER = (
        "conv1.weight", "conv1.bias", "prelu1.weight",
        "conv2.weight", "conv2.bias", "prelu2.weight",
        "conv3.weight", "conv3.bias", "prelu3.weight",
        "conv4.weight", "conv4.bias", "prelu4.weight",
        "dense5.weight", "dense5.bias", "prelu5.weight",
        "dense6_2.weight", "dense6_2.bias", "dense6_3.weight", "dense6_3.bias",
        "dense6_1.weight", "dense6_1.bias",
    )  # fmt: skip

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(box regression (N, 4), landmarks (N, 10), face probability (N,))."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)
        x = self.prelu5(self.dense5(x))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)[:, 1]


# --------------------------------------------------------------------------- weights


def find_weights(name: str, distribution: str = WEIGHTS_DISTRIBUTION) -> Path:
    """Path of ``{name}.lz4`` (``pnet``, ``rnet`` or ``onet``) inside the installed ``mtcnn`` package.

    Found through the package metadata, so ``mtcnn`` (and TensorFlow) is never imported. Raises
    :class:`CheckpointError` saying how to install it when the package or the file is missing.
    """
    hint = f"install it with `pip install {distribution}` (its weights are all fakelens needs from it)"
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise CheckpointError(
            f"MTCNN weights not found: the Python package {distribution!r} is not installed; {hint}"
        ) from None
    wanted = f"{name}.lz4"
    for file in dist.files or ():
        if file.name == wanted and "weights" in file.parts:
            path = Path(dist.locate_file(file))
            if path.is_file():
                return path
    raise CheckpointError(
        f"MTCNN weights not found: {distribution!r} {dist.version} has no weights/{wanted}; {hint}"
    )


@functools.lru_cache(maxsize=None)
def _keras_arrays(name: str) -> tuple[np.ndarray, ...]:
    import joblib  # noqa: PLC0415  (only needed here; lz4 is pulled in by joblib on demand)

    path = find_weights(name)
    try:
        arrays = joblib.load(path)
    except Exception as exc:  # joblib/lz4 raise many types for a corrupt or foreign file
        raise CheckpointError(f"{path}: not a readable MTCNN weights file ({exc})") from None
    if not isinstance(arrays, (list, tuple)) or not all(isinstance(a, np.ndarray) for a in arrays):
        raise CheckpointError(f"{path}: expected a list of arrays, got {type(arrays).__name__}")
    return tuple(arrays)


def _keras_to_torch(array: np.ndarray, target: torch.Tensor) -> torch.Tensor:
    if array.ndim == 4:  # conv kernel HWIO -> OIHW
        array = array.transpose(3, 2, 0, 1)
    elif array.ndim == 3:  # PReLU alphas (1, 1, C) -> (C,)
        array = array.reshape(-1)
    elif array.ndim == 2:  # dense kernel (in, out) -> (out, in)
        array = array.T
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(target.dtype)


def load_network(name: str) -> nn.Module:
    """``PNet``, ``RNet`` or ``ONet`` (by name ``pnet``/``rnet``/``onet``) with the original weights, in eval mode."""
    net = {"pnet": PNet, "rnet": RNet, "onet": ONet}[name]()
    arrays = _keras_arrays(name)
    params = dict(net.named_parameters())
    if len(arrays) != len(net.KERAS_ORDER):
        raise CheckpointError(
            f"{name}: expected {len(net.KERAS_ORDER)} weight arrays, found {len(arrays)}"
        )
    state = {}
    for key, array in zip(net.KERAS_ORDER, arrays):
        tensor = _keras_to_torch(array, params[key])
        if tensor.shape != params[key].shape:
            raise CheckpointError(
                f"{name}: weight {key} has shape {tuple(array.shape)}, "
                f"expected {tuple(params[key].shape)} after conversion"
            )
        state[key] = tensor
    net.load_state_dict(state, strict=True)
    return net.eval().requires_grad_(False)


# --------------------------------------------------------------------------- cascade helpers


#: The networks were trained on (pixel - PIXEL_MEAN) * PIXEL_SCALE.
PIXEL_MEAN = 127.5
PIXEL_SCALE = 0.0078125


def fold_input_normalisation(net: nn.Module) -> nn.Module:
    """Make ``net`` take raw 0..255 pixels by folding (x - 127.5) / 128 into its first convolution.

    Exact in real arithmetic (the first convolution has no padding), and it saves a pass over every
    pyramid level and crop. Modifies ``net`` in place and returns it.
    """
    conv = net.conv1
    with torch.no_grad():
        shift = PIXEL_MEAN * PIXEL_SCALE * conv.weight.sum(dim=(1, 2, 3))
        conv.weight.mul_(PIXEL_SCALE)
        conv.bias.sub_(shift)
    return net


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Grow (x1, y1, x2, y2) boxes to squares about their centres (MTCNN's ``rerec``)."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    x1 = boxes[:, 0] + w * 0.5 - side * 0.5
    y1 = boxes[:, 1] + h * 0.5 - side * 0.5
    return torch.stack([x1, y1, x1 + side, y1 + side], dim=1)


def _regress(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """Apply R-Net/O-Net box offsets, which are fractions of the (inclusive, +1) box size."""
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    return boxes + reg * torch.stack([w, h, w, h], dim=1)


def _crop_windows(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Integer pixel windows [x0, y0, x1, y1) that the original cascade crops for each box.

    MTCNN came from MATLAB: coordinates are truncated, clipped to 1..size, and the window starts one
    pixel before the truncated corner. facenet-pytorch keeps this, and so do we, so that R-Net and
    O-Net see the same pixels and give the same scores.
    """
    b = boxes.trunc().long()
    x0 = b[:, 0].clamp(min=1) - 1
    y0 = b[:, 1].clamp(min=1) - 1
    x1 = b[:, 2].clamp(max=width)
    y1 = b[:, 3].clamp(max=height)
    return torch.stack([x0, y0, x1, y1], dim=1)


def _integral(frames: torch.Tensor) -> torch.Tensor:
    """Summed-area tables of (B, H, W, 3) uint8 frames: (B, H + 1, W + 1, 3), exact in integers.

    Kept channels-last, like the frames, so one gather fetches a pixel's three channels together.
    """
    batch, height, width, channels = frames.shape
    # int32 holds 255 * H * W up to ~8.4 MP frames (4K); bigger frames need int64.
    dtype = torch.int32 if 255 * height * width < 2**31 else torch.int64
    table = torch.zeros(batch, height + 1, width + 1, channels, dtype=dtype, device=frames.device)
    table[:, 1:, 1:] = frames
    table.cumsum_(1)
    table.cumsum_(2)
    return table


def _area_bins(start: torch.Tensor, length: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bin edges of ``adaptive_avg_pool`` (what ``interpolate(mode="area")`` is) over [start, start + length).

    ``start`` and ``length`` are (K,) tensors; returns (K, size) first and one-past-last pixel of each bin.
    """
    i = torch.arange(size, device=start.device)
    length = length[:, None]
    lo = (i * length) // size
    hi = ((i + 1) * length + size - 1) // size
    return start[:, None] + lo, start[:, None] + hi


def _gather_rows(flat: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``flat[index]`` for a 2-D ``flat``: index_select on the flattened index is ~3x faster on CPU."""
    return flat.index_select(0, index.reshape(-1)).view(*index.shape, flat.shape[1])


def _resize_plan(tables: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Where to read a frame's summed-area table to resize it to (height, width) with area averaging.

    Returns the flat table offsets of the four corners of every output pixel's bin, (4, height, width),
    and the bins' pixel counts, (height, width, 1). Computed once per pyramid level, shared by all frames.
    """
    rows, cols = tables.shape[1], tables.shape[2]
    zero = torch.zeros(1, dtype=torch.long, device=tables.device)
    r0, r1 = (r[0, :, None] * cols for r in _area_bins(zero, zero + rows - 1, height))
    c0, c1 = (c[0, None, :] for c in _area_bins(zero, zero + cols - 1, width))
    corners = torch.stack([r1 + c1, r0 + c1, r1 + c0, r0 + c0])
    counts = ((r1 - r0) // cols * (c1 - c0)).to(torch.float32)[..., None]
    return corners, counts


def _area_resize(tables: torch.Tensor, plan: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Whole frames resized with area averaging, from their summed-area tables and a :func:`_resize_plan`.

    Equal to ``interpolate(frames, (height, width), mode="area")``, but the cost follows the output
    size rather than the input's, which matters for a pyramid of a dozen levels of one large frame.
    Returns (B, 3, height, width) float32 in channels-last memory, as the networks want it.
    """
    corners, counts = plan
    batch, rows, cols, channels = tables.shape
    flat = tables.reshape(-1, channels)
    if batch > 1:
        corners = corners[:, None] + torch.arange(batch, device=tables.device)[:, None, None] * (rows * cols)
    else:
        corners = corners[:, None]
    sums = _gather_rows(flat, corners[0])
    sums -= _gather_rows(flat, corners[1])
    sums -= _gather_rows(flat, corners[2])
    sums += _gather_rows(flat, corners[3])
    return sums.to(torch.float32).div_(counts).permute(0, 3, 1, 2)


def _area_crops(tables: torch.Tensor, frame_ids: torch.Tensor, windows: torch.Tensor, size: int) -> torch.Tensor:
    """(K, 3, size, size) float crops of pixel windows, resized with area averaging, from summed-area tables.

    ``frame_ids`` (K,) says which frame each (K, 4) [x0, y0, x1, y1) window is in. The result is in
    channels-last memory.

    Equal to ``interpolate(frame[:, y0:y1, x0:x1], (size, size), mode="area")`` per window, without a
    Python loop over windows: each output pixel is a box sum read from four table corners.
    """
    _, rows, cols, channels = tables.shape
    flat = tables.reshape(-1, channels)
    r0, r1 = _area_bins(windows[:, 1], windows[:, 3] - windows[:, 1], size)  # (K, size)
    c0, c1 = _area_bins(windows[:, 0], windows[:, 2] - windows[:, 0], size)
    base = (frame_ids * (rows * cols))[:, None]
    r0, r1 = (base + r0 * cols)[:, :, None], (base + r1 * cols)[:, :, None]
    c0, c1 = c0[:, None, :], c1[:, None, :]
    sums = _gather_rows(flat, r1 + c1)  # (K, size, size, 3)
    sums -= _gather_rows(flat, r0 + c1)
    sums -= _gather_rows(flat, r1 + c0)
    sums += _gather_rows(flat, r0 + c0)
    counts = ((r1 - r0) // cols * (c1 - c0)).to(torch.float32)
    crops = sums.to(torch.float32).div_(counts[..., None])
    return crops.permute(0, 3, 1, 2)


def _nms_min(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, threshold: float) -> torch.Tensor:
    """Greedy NMS where overlap is intersection over the smaller box (MTCNN's last step), per group.

    Returns the kept indices, most probable first within each group. Called on O-Net survivors only
    (a handful per frame), so a small overlap matrix per frame and a short loop are cheap.
    """
    kept = []
    boxes = boxes.double().cpu()
    scores, groups = scores.cpu(), groups.cpu()
    for group in torch.unique(groups).tolist():
        members = torch.nonzero(groups == group).squeeze(1)
        order = members[torch.argsort(scores[members], descending=True, stable=True)]
        b = boxes[order]
        area = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
        iw = torch.minimum(b[:, None, 2], b[None, :, 2]) - torch.maximum(b[:, None, 0], b[None, :, 0]) + 1
        ih = torch.minimum(b[:, None, 3], b[None, :, 3]) - torch.maximum(b[:, None, 1], b[None, :, 1]) + 1
        overlap = iw.clamp(min=0) * ih.clamp(min=0) / torch.minimum(area[:, None], area[None, :])
        suppress = (overlap > threshold).numpy()
        keep = np.ones(len(order), dtype=bool)
        for i in range(len(order)):
            if keep[i]:
                keep[i + 1 :] &= ~suppress[i, i + 1 :]
        kept.append(order[torch.from_numpy(np.flatnonzero(keep))])
    if not kept:
        return torch.empty(0, dtype=torch.long, device=groups.device)
    return torch.cat(kept)


def _downscale(batch: torch.Tensor, size: tuple[int, int], device: torch.device) -> torch.Tensor:
    """(B, H, W, 3) uint8 CPU frames resized to ``size`` (height, width) with area averaging, on ``device``."""
    if device.type == "cpu":
        import cv2  # noqa: PLC0415  (OpenCV's area resize of 8-bit images is ~10x faster than torch's)

        frames = [cv2.resize(frame.numpy(), size[::-1], interpolation=cv2.INTER_AREA) for frame in batch.cpu()]
        return torch.from_numpy(np.stack(frames))
    images = batch.to(device).permute(0, 3, 1, 2).float()
    small = F.interpolate(images, size=size, mode="area")
    return small.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


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
            raise ValueError(f"min_face_size must be positive, got {min_face_size}")
        thresholds = tuple(float(t) for t in thresholds)
        if len(thresholds) != 3 or not all(0.0 <= t <= 1.0 for t in thresholds):
            raise ValueError(f"thresholds must be three probabilities, got {thresholds}")
        if not 0.0 < scale_factor < 1.0:
            raise ValueError(f"scale_factor must be in (0, 1), got {scale_factor}")
        if detection_size is not None and detection_size < PNET_WINDOW:
            raise ValueError(f"detection_size must be at least {PNET_WINDOW} or None, got {detection_size}")
        self.min_face_size = min_face_size
        self.thresholds = thresholds
        self.scale_factor = float(scale_factor)
        self.detection_size = detection_size
        self.device = resolve_device(device)
        self.num_threads = num_threads
        # The networks take raw pixels (normalisation folded into conv1), in channels-last memory:
        # oneDNN runs these thin convolutions about twice as fast that way on CPU.
        self.pnet, self.rnet, self.onet = (
            fold_input_normalisation(load_network(name)).to(self.device, memory_format=torch.channels_last)
            for name in ("pnet", "rnet", "onet")
        )
        self._chunks = CPU_CHUNKS if self.device.type == "cpu" else GPU_CHUNKS

    def __repr__(self) -> str:
        return (
            f"MTCNN(min_face_size={self.min_face_size}, thresholds={self.thresholds}, "
            f"scale_factor={self.scale_factor}, detection_size={self.detection_size}, device='{self.device}')"
        )

    # ------------------------------------------------------------------ public

    def detect(self, frames) -> list[list[Face]]:
        """Faces in each frame, most probable first.

        ``frames`` is a list of (H, W, 3) uint8 RGB arrays or tensors (sizes may differ; a list of
        :class:`fakelens.media.Frame` works too), an (N, H, W, 3) uint8 array or tensor, or a single
        (H, W, 3) frame. Returns one list per frame (empty where no face was found). Bad input raises
        :class:`fakelens.errors.MediaError`.
        """
        images = _as_frames(frames)
        results: list[list[Face]] = [[] for _ in images]
        by_size: dict[tuple[int, int], list[int]] = {}
        for k, image in enumerate(images):
            by_size.setdefault((image.shape[0], image.shape[1]), []).append(k)
        with torch.inference_mode(), self._threads():
            for (height, width), indices in by_size.items():
                scale = self._detection_scale(height, width)
                pixels = max(1, round(height * scale) * round(width * scale))
                step = max(1, MAX_BATCH_PIXELS // pixels)
                for start in range(0, len(indices), step):
                    chunk = indices[start : start + step]
                    batch = torch.stack([images[k] for k in chunk])
                    for k, faces in zip(chunk, self._detect_batch(batch, scale)):
                        results[k] = faces
        return results

    # ------------------------------------------------------------------ internals

    @contextlib.contextmanager
    def _threads(self):
        """Run with ``num_threads`` torch threads on a CPU, then restore the process setting."""
        if self.device.type != "cpu" or not self.num_threads:
            yield
            return
        previous = torch.get_num_threads()
        torch.set_num_threads(self.num_threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)

    def _detection_scale(self, height: int, width: int) -> float:
        longest = max(height, width)
        if self.detection_size is None or longest <= self.detection_size:
            return 1.0
        return self.detection_size / longest

    def _detect_batch(self, batch: torch.Tensor, scale: float) -> list[list[Face]]:
        """Run the cascade on (B, H, W, 3) uint8 frames of one size."""
        full_h, full_w = batch.shape[1:3]
        min_face = float(self.min_face_size)
        if scale < 1.0:
            # Downscale to 8-bit frames, as if the video had been decoded at that size.
            size = (max(1, round(full_h * scale)), max(1, round(full_w * scale)))
            frames = _downscale(batch, size, self.device)
        else:
            frames = batch.to(self.device)
        height, width = frames.shape[1:3]
        sx, sy = width / full_w, height / full_h
        if scale < 1.0:
            # Below 12 px at detection size P-Net would need an upscaled pyramid: pointless work.
            min_face = max(min_face * min(sx, sy), float(PNET_WINDOW))

        # One summed-area table per frame serves every pyramid level and every R-Net/O-Net crop.
        tables = _integral(frames)
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

    def _pyramid_scales(self, height: int, width: int, min_face: float) -> list[float]:
        """Scales that bring faces of ``min_face`` px and up to P-Net's 12 px window, largest first."""
        scales = []
        scale = PNET_WINDOW / min_face
        side = min(height, width) * scale
        while side >= PNET_WINDOW:
            scales.append(scale)
            scale *= self.scale_factor
            side *= self.scale_factor
        return scales

    def _stage_pnet(self, tables: torch.Tensor, min_face: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Candidate boxes (K, 4) and their frame indices (K,) from P-Net over the image pyramid."""
        height, width = tables.shape[1] - 1, tables.shape[2] - 1
        all_boxes, all_ids = [], []
        for scale in self._pyramid_scales(height, width, min_face):
            size = (int(height * scale + 1), int(width * scale + 1))
            # Frames go through P-Net a few at a time so that each call's activations stay in cache.
            step = max(1, self._chunks["pnet"] // (size[0] * size[1]))
            plan = _resize_plan(tables, *size)
            outputs = [self.pnet(_area_resize(tables[i : i + step], plan)) for i in range(0, len(tables), step)]
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
        return _square(boxes), frame_ids

    def _run_on_crops(self, net: nn.Module, tables, boxes, frame_ids, size: int, chunk: int):
        """``net``'s outputs on the crops of the boxes whose window is not empty, and which boxes those are.

        Crops are cut and scored ``chunk`` at a time, so that on a CPU the activations stay in cache
        (one call on thousands of crops runs about twice slower).
        """
        height, width = tables.shape[1] - 1, tables.shape[2] - 1
        windows = _crop_windows(boxes, height, width)
        valid = torch.nonzero((windows[:, 2] > windows[:, 0]) & (windows[:, 3] > windows[:, 1])).squeeze(1)
        # Visit the windows frame by frame, top to bottom, so the table rows they read stay in cache.
        valid = valid[torch.argsort(frame_ids[valid] * (height + 1) + windows[valid, 1], stable=True)]
        windows, ids = windows[valid], frame_ids[valid]
        outputs = [
            net(_area_crops(tables, ids[i : i + chunk], windows[i : i + chunk], size))
            for i in range(0, len(valid), chunk)
        ]
        return [torch.cat(parts) for parts in zip(*outputs)], valid

    def _stage_rnet(self, tables, boxes, frame_ids):
        (reg, prob), valid = self._run_on_crops(self.rnet, tables, boxes, frame_ids, 24, self._chunks["rnet"])
        boxes, frame_ids = boxes[valid], frame_ids[valid]
        passed = prob > self.thresholds[1]
        boxes, frame_ids, reg, prob = boxes[passed], frame_ids[passed], reg[passed], prob[passed]
        keep = batched_nms(boxes, prob, frame_ids, NMS_RNET)
        boxes = _regress(boxes[keep], reg[keep])
        return _square(boxes), frame_ids[keep]

    def _stage_onet(self, tables, boxes, frame_ids):
        (reg, marks, prob), valid = self._run_on_crops(
            self.onet, tables, boxes, frame_ids, 48, self._chunks["onet"]
        )
        boxes, frame_ids = boxes[valid], frame_ids[valid]
        passed = prob > self.thresholds[2]
        boxes, frame_ids, reg, marks, prob = boxes[passed], frame_ids[passed], reg[passed], marks[passed], prob[passed]
        # Landmarks are fractions of the (inclusive) box O-Net saw, in MATLAB's 1-based pixels.
        w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        xs = boxes[:, 0:1] + w * marks[:, :5] - 1
        ys = boxes[:, 1:2] + h * marks[:, 5:] - 1
        points = torch.stack([xs, ys], dim=2)
        boxes = _regress(boxes, reg)
        keep = _nms_min(boxes, prob, frame_ids, NMS_ONET_MIN).to(boxes.device)
        return boxes[keep], prob[keep], points[keep], frame_ids[keep]


__all__ = ["Face", "MTCNN", "PNet", "RNet", "ONet", "find_weights", "load_network", "LANDMARK_NAMES"]
