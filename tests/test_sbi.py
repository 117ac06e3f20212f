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
    # The pair's REAL image is the crop itself, or the crop with the source transforms when they went to the target.
    assert result.real.shape == real_crop.shape and result.real.dtype == np.uint8
    changed = np.any(result.image != result.real, axis=2)
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


def test_transforms_go_to_source_or_target(real_crop):
    """As the reference code: about half the pairs alter the pasted face, half the crop it is pasted into."""
    to_target = sum(not np.array_equal(self_blend(real_crop, LANDMARKS, np.random.default_rng(s)).real, real_crop) for s in range(40))
    assert 8 <= to_target <= 32


@pytest.mark.parametrize("seed", range(6))
def test_pair_real_matches_the_blend(real_crop, seed):
    from fakelens.sbi import blend_pair_real

    blended = self_blend(real_crop, LANDMARKS, np.random.default_rng(seed))
    assert np.array_equal(blend_pair_real(real_crop, np.random.default_rng(seed)), blended.real)


def test_grayscale_crop_gives_grayscale_pseudo_fake(real_crop):
    from fakelens.sbi import is_grayscale

    gray = np.repeat(real_crop.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    assert is_grayscale(gray) and not is_grayscale(real_crop)
    for seed in range(6):
        result = self_blend(gray, LANDMARKS, np.random.default_rng(seed))
        assert is_grayscale(result.image) and is_grayscale(result.real)


def test_colour_change_is_subtle(real_crop):
    """Paper-strength colour: the pasted face's mean colour moves by at most the RGB shift (20) plus contrast."""
    for seed in range(10):
        result = self_blend(real_crop, LANDMARKS, np.random.default_rng(seed))
        inside = result.mask > 0.9
        if inside.sum() < 100:
            continue
        shift = np.abs(result.image[inside].astype(float).mean(axis=0) - result.real[inside].astype(float).mean(axis=0))
        assert shift.max() < 30, shift


def test_paired_dataset_gives_real_and_its_own_pseudo_fake(shared_data):
    from fakelens.data import PairedSampler

    row = ManifestRow(crop_path=shared_data / CROP, label="real", crop_landmarks=LANDMARKS)
    other = ManifestRow(crop_path=shared_data / "images/celebdf-v2/dfgc__00016/0010.png", label="real")
    items = [(0, "real"), (0, "sbi"), (1, "real"), (1, "sbi")]
    dataset = CropDataset([row, other], items=items, paired=True)
    sampler = PairedSampler(items, num_samples=8, seed=0)
    keys = list(sampler)
    assert len(keys) == len(sampler) == 8
    for real_key, sbi_key in zip(keys[::2], keys[1::2]):
        assert dataset.items[real_key[0]][1] == "real" and dataset.items[sbi_key[0]][1] == "sbi"
        assert dataset.items[real_key[0]][0] == dataset.items[sbi_key[0]][0] and real_key[1] == sbi_key[1]
        real, target = dataset.get_image(real_key)
        fake, fake_target = dataset.get_image(sbi_key)
        assert (target, fake_target) == (0, 1)
        image, landmarks = load_crop(dataset.rows[dataset.items[real_key[0]][0]])
        blended = self_blend(
            image, landmarks, __import__("fakelens.data", fromlist=["sample_rng"]).sample_rng(0, 0, 0, dataset.items[real_key[0]][0], real_key[1], 1)
        )
        assert np.array_equal(real, blended.real) and np.array_equal(fake, blended.image)


# --------------------------------------------------------------------------- dense (468-point) masks, on examples/


@pytest.fixture(scope="module")
def example_face(examples):
    """A real example's 224x224 crop, MTCNN's 5 crop landmarks and the face mesh's 468 points (no ../shared)."""
    from fakelens.facemesh import FaceMesh
    from fakelens.faces import FaceExtractor

    crop = FaceExtractor().extract(examples / "real_ffpp_ex_original.png")[0]
    points, confidence = FaceMesh().predict([crop.image])
    assert confidence[0] > 0.9
    return crop.image, np.asarray(crop.crop_landmarks), points[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dense_sbi_changes_only_inside_mask(example_face, seed):
    from fakelens.sbi import SBIConfig

    image, five, dense = example_face
    result = self_blend(image, five, np.random.default_rng(seed), SBIConfig(mask="dense"), dense=dense)
    assert result.used_landmarks
    changed = np.any(result.image != result.real, axis=2)
    assert not np.any(changed & ~(result.mask > 0)), "pixels outside the mask were modified"
    assert changed.sum() > 0.05 * changed.size


def _inside(points, hull) -> np.ndarray:
    import cv2

    contour = cv2.convexHull(np.asarray(hull, dtype=np.float32))
    return np.array([cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0 for x, y in points])


def test_dense_hulls_cover_the_face_and_reach_the_jaw(example_face):
    from fakelens import facemesh
    from fakelens.sbi import DENSE_HULLS, dense_hull_points, face_hull_points

    _, five, dense = example_face
    eye_y, mouth_y = five[:2, 1].mean(), five[3:, 1].mean()
    h = mouth_y - eye_y
    below_mouth = [(five[3:, 0].mean(), mouth_y + 0.6 * h)]  # between the mouth and the chin
    for kind in DENSE_HULLS:
        hull = dense_hull_points(dense, np.random.default_rng(0), kind)
        assert _inside(five, hull).all(), kind
        if kind != "inner":
            assert _inside(below_mouth, hull).all(), kind
            assert hull[:, 1].max() >= dense[facemesh.CHIN, 1] - 1  # down to the chin itself
            assert _inside(dense[list(facemesh.BROWS)], hull).all(), kind
    oval = dense_hull_points(dense, np.random.default_rng(0), "oval")
    assert oval[:, 1].min() <= dense[facemesh.FOREHEAD, 1] + 1
    # The 5-point full-face hull on the same face: an extrapolation, the dense oval is what it stands for.
    assert face_hull_points(five, np.random.default_rng(0)).shape == (11, 2)


def test_dense_option_off_is_bit_for_bit_the_five_point_mask(example_face):
    from fakelens.sbi import SBIConfig

    image, five, dense = example_face
    for seed in range(3):
        plain = self_blend(image, five, np.random.default_rng(seed))
        ignored = self_blend(image, five, np.random.default_rng(seed), SBIConfig(), dense=dense)
        fallback = self_blend(image, five, np.random.default_rng(seed), SBIConfig(mask="dense"), dense=None)
        assert np.array_equal(plain.image, ignored.image) and np.array_equal(plain.mask, ignored.mask)
        assert np.array_equal(plain.image, fallback.image)
        denser = self_blend(image, five, np.random.default_rng(seed), SBIConfig(mask="dense"), dense=dense)
        assert not np.array_equal(plain.mask, denser.mask)
    with pytest.raises(ValueError):
        SBIConfig(mask="81")


def test_dataset_dense_option(example_face, tmp_path):
    import cv2

    from fakelens.sbi import SBIConfig
    from fakelens.train_config import TrainConfig, field_help

    image, five, dense = example_face
    path = tmp_path / "face.png"
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    rows = [ManifestRow(crop_path=path, label="real", crop_landmarks=five.tolist())]
    items = [(0, "sbi")]
    fractions = [dense / 224.0]
    plain = CropDataset(rows, items, seed=3).get_image(0)[0]
    ignored = CropDataset(rows, items, seed=3, dense=fractions).get_image(0)[0]
    used = CropDataset(rows, items, seed=3, sbi=SBIConfig(mask="dense"), dense=fractions).get_image(0)[0]
    direct = self_blend(image, five, None, SBIConfig(mask="dense"), dense=dense)
    assert np.array_equal(plain, ignored) and not np.array_equal(plain, used)
    assert direct.used_landmarks
    assert TrainConfig().sbi_mask == "five" and "468" in field_help("sbi_mask")


def test_strong_colour_preset_moves_colour_more_than_the_papers(real_crop):
    """The colour A/B of #10 trains with either change; ``strong`` must visibly differ from the subtle default."""
    from fakelens.sbi import SBIConfig
    from fakelens.train_config import TrainConfig

    def mean_shift(colour: str) -> float:
        cfg = SBIConfig.preset(colour)
        cfg.source_p, cfg.degrade_p, cfg.blend_ratios = 1.0, 0.0, (1.0,)  # isolate the colour change of the source
        shifts = []
        for seed in range(12):
            result = self_blend(real_crop, LANDMARKS, np.random.default_rng(seed), cfg)
            inside = result.mask > 0.9
            shifts.append(np.abs(result.image.astype(float) - result.real.astype(float))[inside].mean())
        return float(np.mean(shifts))

    assert SBIConfig.preset("paper") == SBIConfig()
    assert mean_shift("strong") > 1.5 * mean_shift("paper")
    with pytest.raises(ValueError, match="colour must be one of"):
        SBIConfig.preset("vivid")
    assert TrainConfig().sbi_colour == "paper"
