"""Self-Blended Images change a real crop only inside their mask and are labelled FAKE."""

from __future__ import annotations

import numpy as np
import pytest

from fakelens.data import CropDataset, ManifestRow, load_crop
from fakelens.sbi import make_blend_mask, self_blend

CROP = "images/celebdf-v2/dfgc__00016/0000.png"
# 5 landmarks of that crop resized to 224 px (left eye, right eye, nose, mouth left, mouth right), as MTCNN finds them.
LANDMARKS = [[76.0, 92.5], [139.0, 84.0], [105.6, 127.9], [91.4, 162.5], [139.3, 156.3]]


@pytest.fixture(scope="module")
def real_crop(shared_data):
    row = ManifestRow(crop_path=shared_data / CROP, label="real")
    image, _ = load_crop(row)
    assert image.shape == (224, 224, 3)
    return image


@pytest.mark.parametrize("landmarks", [LANDMARKS, None], ids=["landmarks", "ellipse-fallback"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sbi_changes_only_inside_mask(real_crop, landmarks, seed):
    result = self_blend(real_crop, landmarks, np.random.default_rng(seed))
    assert result.label == "fake" and result.target == 1
    assert result.used_landmarks is (landmarks is not None)
    assert result.image.shape == real_crop.shape and result.image.dtype == np.uint8
    changed = np.any(result.image != real_crop, axis=2)
    inside = result.mask > 0
    assert not np.any(changed & ~inside), "pixels outside the mask were modified"
    assert changed.sum() > 0.05 * changed.size, "the blend should alter a visible part of the face"
    # Corners are background: never inside a face mask.
    assert not inside[:8, :8].any() and not inside[-8:, -8:].any()
    assert 0.0 < result.mask.max() <= 1.0


def test_landmark_mask_covers_the_face(real_crop):
    centroid = np.mean(LANDMARKS, axis=0)
    for seed in range(5):
        mask, used = make_blend_mask((224, 224), LANDMARKS, np.random.default_rng(seed))
        assert used
        x, y = np.round(centroid).astype(int)
        assert mask[y, x] > 0.5, "the face centre (nose area) must be inside the blend"


def test_bad_landmarks_fall_back_to_ellipse(real_crop):
    degenerate = [[100.0, 100.0]] * 5
    assert self_blend(real_crop, degenerate, np.random.default_rng(0)).used_landmarks is False
    assert self_blend(real_crop, [[1, 2], [3, 4]], np.random.default_rng(0)).used_landmarks is False


def test_sbi_is_reproducible_with_a_seed(real_crop):
    a = self_blend(real_crop, LANDMARKS, np.random.default_rng(7)).image
    b = self_blend(real_crop, LANDMARKS, np.random.default_rng(7)).image
    c = self_blend(real_crop, LANDMARKS, np.random.default_rng(8)).image
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_dataset_sbi_items_are_fake_and_keyed(shared_data):
    row = ManifestRow(crop_path=shared_data / CROP, label="real", crop_landmarks=LANDMARKS)
    dataset = CropDataset([row], items=[(0, "real"), (0, "sbi")])
    real_image, real_target, _ = dataset[0]
    fake_image, fake_target, _ = dataset[1]
    assert real_target.item() == 0.0 and fake_target.item() == 1.0
    assert not np.array_equal(real_image.numpy(), fake_image.numpy())
    # Same (epoch, index, draw) -> same pseudo-fake; another draw -> another one.
    assert np.array_equal(dataset[(1, 0)][0].numpy(), fake_image.numpy())
    assert not np.array_equal(dataset[(1, 3)][0].numpy(), fake_image.numpy())
    with pytest.raises(ValueError):
        self_blend(np.zeros((8, 8), np.uint8))  # not an RGB image
