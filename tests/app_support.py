"""Helpers shared by the app, report and browser tests: which checkpoint to run, and small inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from shared_paths import IMAGENET_WEIGHTS as BACKBONE

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def bundled_model_usable() -> bool:
    """Whether the bundled default model is installed and passes its checksum."""
    from fakelens.detector import verify_default_model
    from fakelens.errors import CheckpointError

    try:
        verify_default_model()
    except CheckpointError:
        return False
    return True


def make_checkpoint(folder: Path) -> Path:
    """The bundled model when it is usable; else a classifier on the shared ImageNet backbone (its head
    seeded, so scores repeat), or on a seeded random backbone where the shared weights are absent."""
    import torch

    from fakelens.checkpoint import save_checkpoint
    from fakelens.detector import DEFAULT_MODEL
    from fakelens.model import DeepfakeClassifier, load_backbone_weights

    if bundled_model_usable():
        return DEFAULT_MODEL
    torch.manual_seed(0)
    model = DeepfakeClassifier()
    if BACKBONE.is_file():
        load_backbone_weights(model, BACKBONE)
    return save_checkpoint(folder / "app-test.pt", model, threshold=0.5, name="app-test")


def faceless_image() -> np.ndarray:
    """A real background with no face: the city skyline at the right of a frame of examples/real_ffpp_004.mp4."""
    from fakelens.media import load_frames

    frame = load_frames(EXAMPLES / "real_ffpp_004.mp4", num_frames=1)[0].image
    return np.ascontiguousarray(frame[0:480, 1010:1280])


def png_bytes(image: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def screenshot_tools():
    """docs/make_screenshot.py as a module: the server and browser helpers the browser test shares."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_screenshot", ROOT / "docs" / "make_screenshot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
