"""Compression in the loop (#28): a video codec's intra frame at a platform's quality and size, drawn by the
training augmentation with the same settings for both images of an SBI pair."""

from __future__ import annotations

import numpy as np
import pytest

from fakelens.data.augment import Augmenter, sample_rng
from fakelens.media import load_frames
from fakelens.robustness import CODECS, codec_roundtrip, perturb_crops


@pytest.fixture(scope="module")
def crop(examples) -> np.ndarray:
    from fakelens.faces import FaceExtractor

    frames = load_frames(examples / "real_ffpp_004.mp4", num_frames=2)
    return FaceExtractor().extract_frames(frames)[0].image


def _error(a, b) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_codec_roundtrip_keeps_the_size_and_loses_more_at_higher_crf_and_smaller_size(crop, codec):
    fine, coarse = codec_roundtrip(crop, codec, 18), codec_roundtrip(crop, codec, 40)
    small = codec_roundtrip(crop, codec, 18, scale=0.5)
    assert fine.shape == coarse.shape == small.shape == crop.shape and fine.dtype == np.uint8
    assert 0 < _error(fine, crop) < _error(coarse, crop)
    assert _error(fine, crop) < _error(small, crop)


def test_the_augmenter_reencodes_both_images_of_a_pair_alike(crop):
    augment = Augmenter(codec_p=1.0)
    a = augment(crop, sample_rng(0, 0, 0, 5, 0, 2))
    b = augment(crop.copy(), sample_rng(0, 0, 0, 5, 0, 2))
    assert np.array_equal(a, b)  # the same key (a pair shares it): the same codec, CRF and size
    assert not np.array_equal(a, augment(crop, sample_rng(0, 0, 0, 6, 0, 2)))
    # Off by default, and then the draws of runs made before it existed are unchanged.
    assert np.array_equal(Augmenter()(crop, sample_rng(1, 0, 0, 3)), Augmenter(codec_p=0.0)(crop, sample_rng(1, 0, 0, 3)))


def test_half_size_h264_crf35_perturbation_degrades_more_than_crf35_alone(crop):
    crops = [crop, np.ascontiguousarray(crop[:, ::-1])]
    both = perturb_crops("half_h264_crf35", crops)
    alone = perturb_crops("h264_crf35", crops)
    assert [c.shape for c in both] == [c.shape for c in crops]
    assert _error(both[0], crop) > _error(alone[0], crop) > 0
