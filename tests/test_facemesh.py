"""The bundled 468-point face mesh (fakelens.facemesh) on real faces from examples/, and its landmark cache."""

from __future__ import annotations

import numpy as np
import pytest

from fakelens import facemesh
from fakelens.facemesh import FaceMesh, dense_landmarks, five_points

EXAMPLE_IMAGES = ("real_ffpp_ex_original.png", "fake_ffpp_ex_deepfakes.png")


@pytest.fixture(scope="module")
def mesh() -> FaceMesh:
    return FaceMesh()


@pytest.fixture(scope="module")
def example_crops(examples):
    """224x224 crops of the example images' faces as predict makes them, with MTCNN's 5 crop landmarks."""
    from fakelens.faces import FaceExtractor

    extractor = FaceExtractor()
    crops = [extractor.extract(examples / name)[0] for name in EXAMPLE_IMAGES]
    return [c.image for c in crops], [np.asarray(c.crop_landmarks) for c in crops]


def test_bundled_model_is_small_and_as_recorded():
    assert facemesh.MODEL_PATH.stat().st_size < 2_000_000
    provenance = (facemesh.MODEL_PATH.parent / "FACE_LANDMARK_PROVENANCE.md").read_text()
    assert facemesh.model_sha256() in provenance


def test_mesh_lands_on_mtcnn_points(mesh, example_crops):
    images, mtcnn = example_crops
    points, confidence = mesh.predict(images)
    assert points.shape == (2, 468, 2) and points.dtype == np.float32
    assert (confidence > 0.9).all()
    for mesh_points, five in zip(points, mtcnn):
        eye_distance = np.linalg.norm(five[1] - five[0])
        error = np.linalg.norm(five_points(mesh_points) - five, axis=1)
        assert error.max() < 0.15 * eye_distance, error


def test_mesh_reaches_chin_and_brows(mesh, example_crops):
    images, mtcnn = example_crops
    points, _ = mesh.predict(images)
    for p, five in zip(points, mtcnn):
        eye_y, mouth_y = five[:2, 1].mean(), five[3:, 1].mean()
        h = mouth_y - eye_y
        assert p[facemesh.CHIN, 1] > mouth_y + 0.5 * h  # the chin well below the mouth
        assert p[list(facemesh.BROWS), 1].mean() < eye_y - 0.1 * h  # the brows above the eyes
        assert p[facemesh.FOREHEAD, 1] < p[list(facemesh.BROWS), 1].min()
        assert 0 <= p[:, 0].min() and p[:, 0].max() <= 224  # the whole oval inside the crop


def test_no_face_has_low_confidence(mesh):
    noise = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    _, confidence = mesh.predict([np.full((224, 224, 3), 128, np.uint8), noise])
    assert (confidence < facemesh.MIN_CONFIDENCE).all()


def test_points_follow_crop_size(mesh, example_crops):
    import cv2

    image = example_crops[0][0]
    small, _ = mesh.predict([image])
    big, _ = mesh.predict([cv2.resize(image, (448, 448), interpolation=cv2.INTER_CUBIC)])
    assert np.abs(big[0] / 2 - small[0]).max() < 3.0


def test_dense_landmarks_are_cached(mesh, example_crops, tmp_path):
    import cv2

    from fakelens.data.manifest import ManifestRow

    def write_image(path, image):
        assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))

    face, flat = tmp_path / "crops" / "face.png", tmp_path / "crops" / "flat.png"
    face.parent.mkdir()
    write_image(face, example_crops[0][0])
    write_image(flat, np.full((224, 224, 3), 128, np.uint8))
    rows = [ManifestRow(crop_path=face, label="real"), ManifestRow(crop_path=flat, label="real")]
    cache = facemesh.cache_path_for(tmp_path / "manifest.csv")
    first = dense_landmarks(rows, cache, mesh)
    assert cache.is_file() and first[1] is None
    assert first[0] is not None and first[0].shape == (468, 2) and 0 < first[0].min() and first[0].max() < 1

    class NoModel:
        model_path = facemesh.MODEL_PATH

        def predict(self, crops):
            raise AssertionError("the cache should have answered")

    again = dense_landmarks(rows[::-1], cache, NoModel())  # type: ignore[arg-type]
    assert again[0] is None and np.allclose(again[1], first[0])
