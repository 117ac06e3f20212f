"""Crops -> P(fake), through PyTorch or, when installed, ONNX Runtime (several times faster on a CPU).

Both backends take the same input, (N, 224, 224, 3) uint8 RGB crops, because the ImageNet
normalisation and the sigmoid are part of the exported graph: one preprocessing, two engines.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fakelens import atomic
from fakelens.constants import IMAGENET_MEAN, IMAGENET_STD, INPUT_SIZE
from fakelens.device import resolve_device
from fakelens.model import DeepfakeClassifier

log = logging.getLogger(__name__)


class ProbabilityModel(nn.Module):
    """uint8 NHWC crops -> P(fake): normalisation, classifier and sigmoid in one module (what gets exported)."""

    def __init__(self, classifier: DeepfakeClassifier):
        super().__init__()
        self.classifier = classifier
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        x = crops.permute(0, 3, 1, 2).float()
        return torch.sigmoid(self.classifier((x - self.mean) / self.std))


class TorchBackend:
    """Eager PyTorch on CPU or CUDA (channels_last, inference mode)."""

    name = "torch"

    def __init__(self, classifier: DeepfakeClassifier, device: str | torch.device = "cpu", batch_size: int = 32):
        self.device = torch.device(device)
        self.model = ProbabilityModel(classifier).to(self.device).eval()
        self.model = self.model.to(memory_format=torch.channels_last)
        self.batch_size = batch_size

    @torch.inference_mode()
    def __call__(self, crops: np.ndarray) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros(0, dtype=np.float32)
        out = []
        for start in range(0, len(crops), self.batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(crops[start : start + self.batch_size])).to(self.device)
            out.append(self.model(batch).float().cpu().numpy())
        return np.concatenate(out)


class OnnxBackend:
    """ONNX Runtime on the CPU, from a file written by :func:`export_onnx`."""

    name = "onnxruntime"

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        # Idle intra-op threads sleep rather than spin: predict scores crops while the decoder and the face
        # finder run in other threads (fakelens.pipeline), and a spinning thread would take their core.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros(0, dtype=np.float32)
        return self.session.run(None, {self.input_name: np.ascontiguousarray(crops, dtype=np.uint8)})[0]


class FlipAveraged:
    """Horizontal-flip test-time augmentation over any backend: P(fake) from the mean logit of each crop and its
    mirror image (a face and its mirror are the same evidence; averaging halves some of the noise). Twice the
    classifier's work."""

    def __init__(self, backend: TorchBackend | OnnxBackend):
        self.backend = backend
        self.name = f"{backend.name} + flip TTA"

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros(0, dtype=np.float32)
        both = self.backend(np.concatenate([crops, crops[:, :, ::-1]]))
        logits = np.log(np.clip(both, 1e-7, 1.0)) - np.log(np.clip(1.0 - both, 1e-7, 1.0))
        mean = (logits[: len(crops)] + logits[len(crops) :]) / 2.0
        return (1.0 / (1.0 + np.exp(-mean))).astype(np.float32)


def export_onnx(classifier: DeepfakeClassifier, path: str | Path, opset: int = 17) -> Path:
    """Write the classifier (with normalisation and sigmoid) as ONNX with a dynamic batch, atomically.

    The caller's model is left as it was (device, train/eval mode): a CPU copy is exported."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = ProbabilityModel(copy.deepcopy(classifier).cpu()).eval()
    example = torch.zeros(2, INPUT_SIZE, INPUT_SIZE, 3, dtype=torch.uint8)
    with atomic.atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            module,
            (example,),
            str(tmp),
            input_names=["crops"],
            output_names=["p_fake"],
            dynamic_axes={"crops": {0: "batch"}, "p_fake": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    return path


def cache_dir() -> Path:
    """Where derived files (ONNX exports) are kept: ``$FAKELENS_CACHE`` or ``~/.cache/fakelens``."""
    base = os.environ.get("FAKELENS_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fakelens"
    return Path(base)


def state_digest(classifier: DeepfakeClassifier) -> str:
    """A short hash of the weights, so a cached export is never reused for another model."""
    digest = hashlib.sha256()
    for name, tensor in sorted(classifier.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def make_backend(classifier: DeepfakeClassifier, backend: str = "auto", device: str | torch.device | None = None) -> TorchBackend | OnnxBackend:
    """Pick the engine: ``"auto"`` is ONNX Runtime on a CPU when installed, else PyTorch.

    The ONNX file is exported once per set of weights into :func:`cache_dir`; if export or loading
    fails, PyTorch is used and the reason logged.
    """
    device = resolve_device(device)
    if backend == "torch" or (backend == "auto" and (device.type != "cpu" or not onnxruntime_available())):
        return TorchBackend(classifier, device)
    if backend not in ("auto", "onnx"):
        raise ValueError("backend must be 'auto', 'onnx' or 'torch'")
    path = cache_dir() / "onnx" / f"classifier-{state_digest(classifier)}.onnx"
    try:
        if not path.is_file():
            log.info("exporting the classifier to ONNX (once): %s", path)
            export_onnx(classifier, path)
        return OnnxBackend(path)
    except Exception as exc:  # noqa: BLE001 - any export/runtime failure falls back to PyTorch
        if backend == "onnx":
            raise
        log.warning("ONNX Runtime unavailable (%s); using PyTorch", exc)
        return TorchBackend(classifier, device)
