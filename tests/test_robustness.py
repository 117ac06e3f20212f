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


def test_tight_crop_augmentation_imitates_predicts_tight_path(face_crops, detector):
    """Training's tight-crop augmentation shows a crop as ``predict`` sees the same face cut tightly: the
    re-detected, mirror-filled tight crop is nearer to it than to the original crop, in every frame."""
    from fakelens.data import Augmenter

    exact = Augmenter(tight_side=(1.0, 1.0), tight_soft_p=0.0)
    real_tight = perturb_crops("tight_crop", face_crops, detector)
    for k, (crop, target) in enumerate(zip(face_crops, real_tight)):
        assert target is not None
        imitation = exact._tight(crop, np.random.default_rng(k))
        assert imitation.shape == crop.shape and imitation.dtype == np.uint8
        to_imitation = np.abs(imitation.astype(np.float64) - target).mean()
        to_original = np.abs(crop.astype(np.float64) - target).mean()
        assert to_imitation < to_original, (k, to_imitation, to_original)


def test_tight_crop_augmentation_is_off_unless_asked(face_crops):
    """tight_p=0 (the default) draws no random number for it: older runs see exactly the images they saw."""
    from fakelens.data import Augmenter

    crop = face_crops[0]
    plain = Augmenter()(crop, np.random.default_rng(3))
    assert np.array_equal(plain, Augmenter(tight_side=(0.5, 0.6))(crop, np.random.default_rng(3)))
    always = Augmenter(tight_p=1.0, hflip_p=0, affine_p=0, color_p=0, canvas_p=0, grayscale_p=0, downscale_p=0, blur_p=0, jpeg_p=0)
    assert not np.array_equal(always(crop, np.random.default_rng(3)), crop)
