"""The three MTCNN networks (P-Net, R-Net, O-Net) and the original weights they load.

The weights are read from the PyPI package ``mtcnn`` (Keras arrays in ``mtcnn/assets/weights/*.lz4``)
through ``importlib.metadata``; ``mtcnn`` itself, which needs TensorFlow, is never imported.
"""

from __future__ import annotations

import functools
import importlib.metadata
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fakelens.errors import CheckpointError

#: PyPI distribution that ships the original MTCNN weights.
WEIGHTS_DISTRIBUTION = "mtcnn"
#: P-Net sees 12x12 windows: a face of ``min_face_size`` pixels is scaled to 12 px at the pyramid's base.
PNET_WINDOW = 12


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


class WidePReLU(nn.PReLU):
    """``nn.PReLU`` for channels-last maps whose channel count is not a multiple of 16 (P-Net's 10, R-Net's 28).

    PyTorch's kernel vectorises over the channels of each pixel, so 10 channels leave most of each AVX-512
    register empty (a P-Net first-layer map of 10 frames: 6.9 ms plain, 1.5 ms on the wide view, timed alone;
    end to end the gain is a few percent of face finding). A channels-last
    map is a (pixels, channels) matrix; viewed as (pixels / k, k * channels) rows with the weights repeated k
    times, the same multiplications run on full registers (k a multiple of 16 / gcd(channels, 16), largest of
    four such first: 320 values a row for 10 channels). Same values, bit for bit; maps whose pixel count no
    candidate k divides take the plain kernel.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or not x.is_contiguous(memory_format=torch.channels_last):
            return super().forward(x)
        batch, channels, height, width = x.shape
        pixels = batch * height * width
        base = 16 // math.gcd(channels, 16)
        for k in (4 * base, 2 * base, base):
            if pixels % k == 0:
                wide = x.permute(0, 2, 3, 1).reshape(pixels // k, k * channels)
                out = F.prelu(wide, self.weight.repeat(k))
                return out.view(batch, height, width, channels).permute(0, 3, 1, 2)
        return super().forward(x)


def prelu(channels: int) -> nn.PReLU:
    """A per-channel PReLU, :class:`WidePReLU` where the channel count leaves registers part-empty."""
    return nn.PReLU(channels) if channels % 16 == 0 else WidePReLU(channels)


class PNet(nn.Module):
    """Proposal network: fully convolutional, one 12x12 window per output cell (stride 2)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = prelu(10)
        self.pool1 = MaxPool2x2Ceil()
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = prelu(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = prelu(32)
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
        self.prelu1 = prelu(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = prelu(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = prelu(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = prelu(128)
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
        self.prelu1 = prelu(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = prelu(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = prelu(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = prelu(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = prelu(256)
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


def find_weights(name: str, distribution: str = WEIGHTS_DISTRIBUTION) -> Path:
    """Path of ``{name}.lz4`` (``pnet``, ``rnet`` or ``onet``) inside the installed ``mtcnn`` package.

    Found through the package metadata, so ``mtcnn`` (and TensorFlow) is never imported. Raises
    :class:`CheckpointError` saying how to install it when the package or the file is missing.
    """
    hint = f"install it with `pip install {distribution}` (its weights are all fakelens needs from it)"
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise CheckpointError(f"MTCNN weights not found: the Python package {distribution!r} is not installed; {hint}") from None
    wanted = f"{name}.lz4"
    for file in dist.files or ():
        if file.name == wanted and "weights" in file.parts:
            path = Path(dist.locate_file(file))
            if path.is_file():
                return path
    raise CheckpointError(f"MTCNN weights not found: {distribution!r} {dist.version} has no weights/{wanted}; {hint}")


@functools.cache
def _keras_arrays(name: str) -> tuple[np.ndarray, ...]:
    import joblib  # noqa: PLC0415  (only needed here; lz4 is pulled in by joblib on demand)

    path = find_weights(name)
    try:
        arrays = joblib.load(path)
    except Exception as exc:  # noqa: BLE001 - joblib/lz4 raise many types for a corrupt or foreign file
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
        raise CheckpointError(f"{name}: expected {len(net.KERAS_ORDER)} weight arrays, found {len(arrays)}")
    state = {}
    for key, array in zip(net.KERAS_ORDER, arrays):
        tensor = _keras_to_torch(array, params[key])
        if tensor.shape != params[key].shape:
            raise CheckpointError(f"{name}: weight {key} has shape {tuple(array.shape)}, expected {tuple(params[key].shape)} after conversion")
        state[key] = tensor
    net.load_state_dict(state, strict=True)
    return net.eval().requires_grad_(False)


#: The networks were trained on (pixel - PIXEL_MEAN) * PIXEL_SCALE.
PIXEL_MEAN = 127.5
PIXEL_SCALE = 0.0078125


def fold_input_normalisation(net: nn.Module) -> nn.Module:
    """Make ``net`` take raw 0..255 pixels by folding (x - 127.5) / 128 into its first convolution.

    Exact in real arithmetic (the first convolution has no padding), and it saves a pass over every
    pyramid level and crop. Modifies ``net`` in place and returns it.
    """
    conv = net.conv1
    assert isinstance(conv, nn.Conv2d) and conv.bias is not None
    with torch.no_grad():
        shift = PIXEL_MEAN * PIXEL_SCALE * conv.weight.sum(dim=(1, 2, 3))
        conv.weight.mul_(PIXEL_SCALE)
        conv.bias.sub_(shift)
    return net
