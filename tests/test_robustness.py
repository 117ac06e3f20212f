"""Perturbations of the robustness table keep shapes and do what their names say."""

from __future__ import annotations

import numpy as np
import pytest

from fakelens.robustness import PERTURBATIONS, perturb_crops


@pytest.fixture(scope="module")
def face_crops(examples):
    from fakelens.faces import FaceExtractor

    crops = FaceExtractor(num_frames=4).extract(examples / "real_ffpp_004.mp4")
    assert len(crops) >= 3
    return [c.image for c in crops]


@pytest.fixture(scope="module")
def detector():
    from fakelens.mtcnn import MTCNN

    return MTCNN(min_face_size=20)


@pytest.mark.parametrize("name", PERTURBATIONS)
def test_each_perturbation_keeps_the_crops(face_crops, detector, name):
    out = perturb_crops(name, face_crops, detector)
    assert len(out) == len(face_crops)
    kept = [c for c in out if c is not None]
    assert kept, "every perturbation must leave faces to score"
    for crop in kept:
        assert crop.shape == face_crops[0].shape and crop.dtype == np.uint8
    if name == "none":
        assert all(np.array_equal(a, b) for a, b in zip(out, face_crops))
    elif name == "grayscale":
        assert all(np.array_equal(c[..., 0], c[..., 2]) for c in kept)
    else:
        assert not all(np.array_equal(a, b) for a, b in zip(kept, face_crops))


def test_stronger_compression_loses_more(face_crops):
    def error(name):
        return np.mean([np.abs(a.astype(float) - b).mean() for a, b in zip(perturb_crops(name, face_crops), face_crops)])

    assert error("jpeg90") < error("jpeg50")
    assert error("h264_crf23") < error("h264_crf35")


def test_unknown_perturbation_is_refused(face_crops):
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturb_crops("sepia", face_crops)
    with pytest.raises(ValueError, match="detector"):
        perturb_crops("tight_crop", face_crops)
