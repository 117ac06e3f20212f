"""The manifest module: one column list, one writer, one reader that gives back what was written."""

from __future__ import annotations

import numpy as np
import pytest

from fakelens.data import MANIFEST_COLUMNS, ManifestError, read_manifest, write_csv, write_manifest


def test_written_rows_read_back(tmp_path):
    crop = tmp_path / "crops" / "a.png"
    crop.parent.mkdir()
    crop.write_bytes(b"")
    points = np.array([[30.123, 40.0], [60.0, 40.5], [45.0, 55.0], [35.0, 70.0], [55.0, 70.0]])
    rows = [
        {"crop_path": "crops/a.png", "video": "v.mp4", "frame_index": 7, "timestamp": 0.28, "track": 1,
         "x1": 1.5, "y1": 2.0, "x2": 101.0, "y2": 120.25, "prob": 0.99, "landmarks": points + 100,
         "crop_landmarks": points, "label": "fake", "split": "val", "group": "g", "method": "m", "dataset": "d"},
        {"crop_path": "crops/a.png", "label": "unknown"},  # unlabelled: skipped by the reader
        {"crop_path": "crops/a.png", "label": "real", "crop_landmarks": "[]", "extra": "ignored"},
    ]  # fmt: skip
    path = write_manifest(rows, tmp_path / "manifest.csv")
    text = path.read_text()
    assert text.splitlines()[0] == ",".join(MANIFEST_COLUMNS) and "\r" not in text and "ignored" not in text
    assert '"[[30.12,40.0],[60.0,40.5]' in text
    fake, real = read_manifest(path)
    assert fake.crop_path == crop.resolve() and fake.label == "fake" and fake.split == "val" and fake.target == 1
    assert (fake.video, fake.frame_index, fake.track, fake.group, fake.method, fake.dataset) == ("v.mp4", 7, 1, "g", "m", "d")
    assert fake.timestamp == 0.28 and fake.prob == 0.99 and fake.box == (1.5, 2.0, 101.0, 120.25)
    np.testing.assert_allclose(fake.crop_landmarks, points, atol=0.005)
    np.testing.assert_allclose(fake.landmarks, points + 100, atol=0.005)
    # Missing values: defaults, never errors; the group falls back on the video, then the crop.
    assert real.crop_landmarks is None and real.box is None and real.prob is None and real.group == "crops/a.png"
    assert [r.label for r in read_manifest(path, split="val")] == ["fake"]
    with pytest.raises(ManifestError, match="no labelled rows in split test"):
        read_manifest(path, split="test")
    write_csv(tmp_path / "other.csv", ["crop_path"], [{"label": "real"}])
    with pytest.raises(ManifestError, match="missing columns: label"):
        read_manifest(tmp_path / "other.csv")
