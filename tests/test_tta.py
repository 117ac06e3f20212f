"""Flip test-time augmentation (#28): the mean logit of a crop and its mirror image, on either engine, and the
model's own inference settings read from its checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

from fakelens.backends import FlipAveraged, make_backend
from fakelens.checkpoint import load_checkpoint, load_model, save_checkpoint
from fakelens.detector import Detector
from fakelens.errors import InvalidArgument
from fakelens.media import load_frames


@pytest.fixture(scope="module")
def crops(examples) -> np.ndarray:
    from fakelens.faces import FaceExtractor

    frames = load_frames(examples / "real_ffpp_004.mp4", num_frames=4)
    out = [c.image for c in FaceExtractor().extract_frames(frames)]
    assert out
    return np.stack(out)


def _logit(p):
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_flip_tta_is_the_mean_logit_of_a_crop_and_its_mirror(checkpoint, crops, backend):
    model, _ = load_model(checkpoint)
    engine = make_backend(model, backend, "cpu")
    tta = FlipAveraged(engine)
    plain, mirrored, both = engine(crops), engine(np.ascontiguousarray(crops[:, :, ::-1])), tta(crops)
    expected = 1 / (1 + np.exp(-(_logit(plain) + _logit(mirrored)) / 2))
    assert both == pytest.approx(expected, abs=1e-5)
    assert not np.allclose(plain, mirrored)  # the mirror is other evidence, not the same input
    symmetric = np.concatenate([crops[:, :, :112], crops[:, :, :112][:, :, ::-1]], axis=2)
    assert tta(symmetric) == pytest.approx(engine(symmetric), abs=1e-5)
    assert tta(crops[:0]).shape == (0,)


def test_the_model_runs_as_its_checkpoint_says_unless_told_otherwise(checkpoint, tmp_path):
    model, _ = load_model(checkpoint)
    payload = load_checkpoint(checkpoint)
    path = save_checkpoint(tmp_path / "m.pt", model, threshold=payload.get("threshold"), name="tta-test",
                           extra={"inference": {"tta": "flip", "aggregate": "confident"}})  # fmt: skip
    own = Detector.from_checkpoint(path)
    assert (own.tta, own.aggregate) == ("flip", "confident") and "flip" in own.classify.name
    told = Detector.from_checkpoint(path, tta="none", aggregate="mean")
    assert (told.tta, told.aggregate) == ("none", "mean") and "flip" not in told.classify.name
    recorded = load_model(checkpoint)[1]["inference"]
    plain = Detector.from_checkpoint(checkpoint)
    assert (plain.tta, plain.aggregate) == (recorded.get("tta", "none"), recorded.get("aggregate", "mean"))
    with pytest.raises(InvalidArgument, match="tta"):
        Detector.from_checkpoint(checkpoint, tta="rotate")
