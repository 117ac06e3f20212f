"""Shared fixtures: the bundled examples and, where present, the media pool in ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest
from shared_paths import IMAGENET_WEIGHTS, SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def examples() -> Path:
    return EXAMPLES


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip: CI always has it, a user's clone may not (FAKELENS_SHARED=none acts so)."""
    if not (SHARED_DATA / "media.csv").is_file():
        pytest.skip(f"needs the shared media pool at {SHARED_DATA} (not present in this checkout, or FAKELENS_SHARED=none)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """The bundled model when present, else a classifier initialised from ImageNet weights.

    Tests that use it check behaviour (shapes, errors, agreement between engines), never accuracy.
    """
    from fakelens.detector import DEFAULT_MODEL

    if DEFAULT_MODEL.is_file():
        return DEFAULT_MODEL
    import torch

    from fakelens.checkpoint import save_checkpoint
    from fakelens.model import DeepfakeClassifier, load_backbone_weights

    torch.manual_seed(0)
    model = DeepfakeClassifier()
    if IMAGENET_WEIGHTS.is_file():
        load_backbone_weights(model, IMAGENET_WEIGHTS)
    return save_checkpoint(tmp_path_factory.mktemp("model") / "init.pt", model, threshold=0.5, name="test-init")


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Keep ONNX exports made by tests out of the user's ~/.cache."""
    import os

    os.environ["FAKELENS_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
