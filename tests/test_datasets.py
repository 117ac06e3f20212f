"""Dataset readers: Celeb-DF v2, FaceForensics++ and plain folders -> labelled, leak-free splits."""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from pathlib import Path

import pytest

from fakelens.data import (
    DatasetError,
    assign_splits,
    balance,
    class_counts,
    load_ffpp_splits,
    read_celebdf,
    read_celebdf_test_list,
    read_dataset,
    read_ffpp,
    read_folder,
)
from fakelens.errors import FakelensError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
#: Real clips every tree links to: the readers look at names, preprocessing at the pixels.
REAL_CLIP = EXAMPLES / "real_dfdc_aayrffkzxn.mp4"
FAKE_CLIP = EXAMPLES / "fake_dfdc_abhggqdift.mp4"


def place(root: Path, relpath: str, source: Path = REAL_CLIP) -> Path:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(source, path)
    return path


def identities(records, split):
    return {i for r in records if r.split == split for i in r.identity.split("+")}


# --------------------------------------------------------------------------- Celeb-DF v2


@pytest.fixture()
def small_celebdf(tmp_path) -> Path:
    root = tmp_path / "Celeb-DF-v2"
    for name in ("id0_0000", "id0_0001", "id1_0000", "id2_0000", "id3_0000"):
        place(root, f"Celeb-real/{name}.mp4")
    for name in ("id0_id1_0000", "id1_id0_0000", "id2_id3_0000", "id3_id2_0000", "id0_id2_0001"):
        place(root, f"Celeb-synthesis/{name}.mp4", FAKE_CLIP)
    for name in ("00000", "00001", "00002"):
        place(root, f"YouTube-real/{name}.mp4")
    (root / "List_of_testing_videos.txt").write_text("1 YouTube-real/00000.mp4\n1 Celeb-real/id0_0001.mp4\n0 Celeb-synthesis/id0_id2_0001.mp4\n")
    return root


def test_celebdf_test_list_uses_1_for_real(small_celebdf):
    listed = read_celebdf_test_list(small_celebdf / "List_of_testing_videos.txt")
    assert listed == {
        "YouTube-real/00000.mp4": "real",
        "Celeb-real/id0_0001.mp4": "real",
        "Celeb-synthesis/id0_id2_0001.mp4": "fake",
    }


def test_celebdf_labels_splits_and_columns(small_celebdf):
    records = read_celebdf(small_celebdf, cross_identity="target")
    by_path = {r.relpath: r for r in records}
    assert len(records) == 13
    assert {p for p, r in by_path.items() if r.split == "test"} == {
        "YouTube-real/00000.mp4",
        "Celeb-real/id0_0001.mp4",
        "Celeb-synthesis/id0_id2_0001.mp4",
    }
    for relpath, record in by_path.items():
        assert record.label == ("fake" if relpath.startswith("Celeb-synthesis/") else "real")
        assert Path(record.path).is_absolute() and Path(record.path).exists()
        assert record.dataset == "celebdf-v2"
    fake = by_path["Celeb-synthesis/id1_id0_0000.mp4"]
    assert (fake.identity, fake.group, fake.method) == ("id1+id0", "celebdf:id1", "Celeb-synthesis")
    youtube = by_path["YouTube-real/00001.mp4"]
    assert (youtube.identity, youtube.group, youtube.method) == ("youtube-00001", "celebdf:youtube-00001", "")
    assert {r.split for r in records} == {"train", "val", "test"}


def test_celebdf_reversed_test_list_is_refused(small_celebdf):
    (small_celebdf / "List_of_testing_videos.txt").write_text("0 YouTube-real/00000.mp4\n")
    with pytest.raises(DatasetError, match="1 = real"):
        read_celebdf(small_celebdf)


@pytest.mark.parametrize("line", ["2 YouTube-real/00000.mp4", "YouTube-real/00000.mp4"])
def test_celebdf_malformed_test_list(small_celebdf, line):
    (small_celebdf / "List_of_testing_videos.txt").write_text(f"1 Celeb-real/id0_0000.mp4\n{line}\n")
    with pytest.raises(DatasetError, match=":2: expected"):
        read_celebdf(small_celebdf)


def test_celebdf_errors(tmp_path, small_celebdf):
    with pytest.raises(DatasetError, match="not found"):
        read_celebdf(tmp_path / "missing")
    (tmp_path / "other").mkdir()
    with pytest.raises(DatasetError, match="not a Celeb-DF v2 folder"):
        read_celebdf(tmp_path / "other")
    os.remove(small_celebdf / "List_of_testing_videos.txt")
    with pytest.raises(FakelensError, match="test list not found"):
        read_celebdf(small_celebdf)


@pytest.fixture()
def large_celebdf(tmp_path) -> Path:
    """40 identities with random swaps, as in Celeb-DF (a target's fakes use several sources)."""
    root = tmp_path / "Celeb-DF-v2"
    rng = random.Random(7)
    ids = [f"id{i}" for i in range(40)]
    for identity in ids:
        for n in range(3):
            place(root, f"Celeb-real/{identity}_{n:04d}.mp4")
            for source in rng.sample([i for i in ids if i != identity], 4):
                place(root, f"Celeb-synthesis/{identity}_{source}_{n:04d}.mp4", FAKE_CLIP)
    for n in range(30):
        place(root, f"YouTube-real/{n:05d}.mp4")
    test = ["1 Celeb-real/id5_0000.mp4", "1 YouTube-real/00003.mp4"]
    test += [f"0 {p.relative_to(root).as_posix()}" for p in sorted((root / "Celeb-synthesis").iterdir())[:10]]
    (root / "List_of_testing_videos.txt").write_text("\n".join(test) + "\n")
    return root


def test_celebdf_no_identity_in_train_and_val(large_celebdf):
    records = read_celebdf(large_celebdf, val_fraction=0.2, seed=3)
    train, val = identities(records, "train"), identities(records, "val")
    assert train and val and not train & val
    # Only fakes are left out, and a fraction of them: every real video is kept.
    n_files = sum(1 for _ in large_celebdf.rglob("*.mp4"))
    kept = Counter(r.label for r in records)
    assert kept["real"] == 40 * 3 + 30
    assert 0 < n_files - len(records) < kept["fake"]
    assert Counter(r.split for r in records)["test"] == 12
    # The val share of celebrity identities is the requested fraction; YouTube videos likewise.
    val_celebs = {i for i in val if i.startswith("id")}
    assert len(val_celebs) == 8
    assert len({i for i in val if i.startswith("youtube-")}) == round(0.2 * 29)


def test_celebdf_split_is_deterministic_and_seeded(large_celebdf):
    first = read_celebdf(large_celebdf, seed=1)
    assert first == read_celebdf(large_celebdf, seed=1)
    other = read_celebdf(large_celebdf, seed=2)
    assert identities(first, "val") != identities(other, "val")


def test_celebdf_cross_identity_target_keeps_every_video_by_target(large_celebdf):
    records = read_celebdf(large_celebdf, cross_identity="target", seed=3, val_fraction=0.2)
    assert len(records) == sum(1 for _ in large_celebdf.rglob("*.mp4"))
    train_targets = {r.identity.split("+")[0] for r in records if r.split == "train"}
    val_targets = {r.identity.split("+")[0] for r in records if r.split == "val"}
    assert not train_targets & val_targets


def test_official_celebdf_test_list(shared_data, tmp_path):
    listed = read_celebdf_test_list(shared_data / "lists" / "List_of_testing_videos.txt")
    assert len(listed) == 518
    assert Counter(listed.values()) == {"real": 178, "fake": 340}
    for relpath, label in listed.items():
        assert label == ("fake" if relpath.startswith("Celeb-synthesis/") else "real"), relpath
    # A tree holding exactly the listed names reads as the official test split.
    root = tmp_path / "Celeb-DF-v2"
    for relpath in listed:
        place(root, relpath)
    place(root, "Celeb-real/id0_0009.mp4")
    os.symlink(shared_data / "lists" / "List_of_testing_videos.txt", root / "List_of_testing_videos.txt")
    records = read_celebdf(root)
    assert class_counts(r for r in records if r.split == "test") == {"test": {"real": 178, "fake": 340}}
    assert [r.relpath for r in records if r.split != "test"] == ["Celeb-real/id0_0009.mp4"]


# --------------------------------------------------------------------------- FaceForensics++

FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")


@pytest.fixture()
def small_ffpp(tmp_path) -> Path:
    """Official layout: ids from each official split, all six methods, DFD actors, a c40 copy to ignore."""
    root = tmp_path / "FaceForensics++"
    official = load_ffpp_splits()
    pairs = [official["train"][0], official["val"][0], official["test"][0]]  # one pair of each split
    for a, b in pairs:
        for i in (a, b):
            place(root, f"original_sequences/youtube/c23/videos/{i}.mp4")
            place(root, f"original_sequences/youtube/c40/videos/{i}.mp4")
        for method in FFPP_METHODS:
            place(root, f"manipulated_sequences/{method}/c23/videos/{a}_{b}.mp4", FAKE_CLIP)
            place(root, f"manipulated_sequences/{method}/c23/videos/{b}_{a}.mp4", FAKE_CLIP)
    actors = [f"{i:02d}" for i in range(1, 29)]
    for actor in actors:
        place(root, f"original_sequences/actors/c23/videos/{actor}__talking_against_wall.mp4")
    rng = random.Random(0)
    for actor in actors:
        for source in rng.sample([a for a in actors if a != actor], 3):
            place(root, f"manipulated_sequences/DeepFakeDetection/c23/videos/{actor}_{source}__walking__AB12CD34.mp4", FAKE_CLIP)
    place(root, "manipulated_sequences/DeepFakeDetection/c23/videos/01_11__talking_against_wall__9229VVZ3.mp4", FAKE_CLIP)
    return root


def test_ffpp_official_splits_and_methods(small_ffpp):
    records = read_ffpp(small_ffpp)
    official = load_ffpp_splits()
    youtube = [r for r in records if not r.method == "DeepFakeDetection" and "actors" not in r.relpath]
    assert len(youtube) == 6 + 3 * 2 * len(FFPP_METHODS)  # 3 pairs: 6 originals, 2 fakes per method
    for split, pairs in official.items():
        a, b = pairs[0]
        for relpath in (f"original_sequences/youtube/c23/videos/{a}.mp4", f"manipulated_sequences/FaceShifter/c23/videos/{b}_{a}.mp4"):
            record = next(r for r in records if r.relpath == relpath)
            assert record.split == split
            assert record.group == f"ffpp:{'+'.join(sorted((a, b)))}"
    assert {r.method for r in records} == set(FFPP_METHODS) | {"DeepFakeDetection", ""}
    assert {r.method for r in records if r.label == "real"} == {""}
    assert all(r.dataset == "ffpp-c23" for r in records)
    assert not any("/c40/" in r.relpath for r in records)
    # (With the default cross_identity="drop" it may be left out, if actors 01 and 11 are split apart.)
    everything = read_ffpp(small_ffpp, cross_identity="target")
    fake = next(r for r in everything if r.relpath.endswith("01_11__talking_against_wall__9229VVZ3.mp4"))
    assert (fake.label, fake.identity) == ("fake", "01+11")


def test_ffpp_dfd_actors_split_without_leak(small_ffpp):
    records = read_ffpp(small_ffpp, methods=["DeepFakeDetection"])
    assert all("actors" in r.relpath or r.method == "DeepFakeDetection" for r in records)
    sides = {split: identities(records, split) for split in ("train", "val", "test")}
    assert all(sides.values())
    assert not sides["train"] & sides["val"] and not sides["train"] & sides["test"] and not sides["val"] & sides["test"]
    assert {len(v) for k, v in sides.items() if k != "train"} == {round(0.14 * 28)}
    reals = [r for r in records if r.label == "real"]
    assert len(reals) == 28 and reals[0].group.startswith("ffpp-dfd:")
    assert records == read_ffpp(small_ffpp, methods=["DeepFakeDetection"])


def test_ffpp_options_and_errors(small_ffpp, tmp_path):
    only = read_ffpp(small_ffpp, methods=["Face2Face"])
    assert {r.method for r in only} == {"Face2Face", ""}
    assert not any("actors" in r.relpath for r in only)
    c40 = read_ffpp(small_ffpp, compression="c40")
    assert len(c40) == 6 and all(r.dataset == "ffpp-c40" for r in c40)
    with pytest.raises(DatasetError, match="compression 'raw'.*found: c23, c40"):
        read_ffpp(small_ffpp, compression="raw")
    with pytest.raises(DatasetError, match="not found.*Morphing"):
        read_ffpp(small_ffpp, methods=["Morphing"])
    with pytest.raises(DatasetError, match="not a FaceForensics"):
        read_ffpp(tmp_path)
    # Split files given on disk replace the embedded copy.
    splits = tmp_path / "splits"
    splits.mkdir()
    official = load_ffpp_splits()
    swapped = {"train": official["test"], "val": official["val"], "test": official["train"]}
    for split, pairs in swapped.items():
        (splits / f"{split}.json").write_text(json.dumps([list(p) for p in pairs]))
    a, _ = official["train"][0]
    record = next(r for r in read_ffpp(small_ffpp, splits=splits) if r.relpath.endswith(f"youtube/c23/videos/{a}.mp4"))
    assert record.split == "test"
    (splits / "val.json").write_text("{not json")
    with pytest.raises(DatasetError, match="val.json"):
        read_ffpp(small_ffpp, splits=splits)


def test_shipped_ffpp_split_is_package_data():
    """The official lists ship as fakelens/data/ffpp_splits.json (pyproject's package-data), in the format
    of FaceForensics' own train/val/test.json: a split with no folder needs no download."""
    from importlib import resources

    shipped = json.loads(resources.files("fakelens.data").joinpath("ffpp_splits.json").read_text())
    assert {k: len(v) for k, v in shipped.items()} == {"train": 360, "val": 70, "test": 70}
    assert load_ffpp_splits() == {k: [tuple(pair) for pair in v] for k, v in shipped.items()}
    ids = [i for pairs in shipped.values() for pair in pairs for i in pair]
    assert len(ids) == len(set(ids)) == 1000 and all(len(i) == 3 and i.isdigit() for i in ids)


def test_embedded_ffpp_split_is_the_official_one(shared_data):
    folder = shared_data / "lists" / "ffpp_splits"
    assert load_ffpp_splits() == load_ffpp_splits(folder)
    counts = {k: len(v) for k, v in load_ffpp_splits().items()}
    assert counts == {"train": 360, "val": 70, "test": 70}
    ids = [i for pairs in load_ffpp_splits().values() for pair in pairs for i in pair]
    assert len(ids) == len(set(ids)) == 1000


# --------------------------------------------------------------------------- plain folders


def test_folder_layout_labels_groups_and_images(tmp_path):
    root = tmp_path / "mine"
    place(root, "real/a.mp4")
    place(root, "real/deep/nested/b.mp4")
    place(root, "fake/method1/a.mp4", FAKE_CLIP)
    place(root, "fake/c.png", EXAMPLES / "fake_ffpp_ex_deepfakes.png")
    place(root, "fake/video7/0001.png", EXAMPLES / "fake_ffpp_ex_deepfakes.png")
    place(root, "fake/video7/0002.png", EXAMPLES / "fake_ffpp_ex_deepfakes.png")
    place(root, "real/notes.txt", EXAMPLES / "README.md")
    place(root, "unsorted/x.mp4")
    records = read_folder(root, val_fraction=0.3)
    by_path = {r.relpath: r for r in records}
    assert set(by_path) == {
        "real/a.mp4",
        "real/deep/nested/b.mp4",
        "fake/method1/a.mp4",
        "fake/c.png",
        "fake/video7/0001.png",
        "fake/video7/0002.png",
    }
    assert {p for p, r in by_path.items() if r.label == "real"} == {"real/a.mp4", "real/deep/nested/b.mp4"}
    # A real and a fake with one stem share a group, and so a split; frames of one folder likewise.
    assert by_path["real/a.mp4"].group == by_path["fake/method1/a.mp4"].group == "mine:a"
    assert by_path["real/a.mp4"].split == by_path["fake/method1/a.mp4"].split
    assert by_path["fake/video7/0001.png"].group == by_path["fake/video7/0002.png"].group == "mine:video7"
    assert by_path["fake/c.png"].group == "mine:c"
    assert {r.split for r in records} <= {"train", "val"} and "val" in {r.split for r in records}


def test_folder_split_folders_win(tmp_path):
    root = tmp_path / "data"
    place(root, "train/real/a.mp4")
    place(root, "train/fake/b.mp4", FAKE_CLIP)
    place(root, "test/fake/c.mp4", FAKE_CLIP)
    place(root, "validation/real/d.mp4")
    records = read_dataset(root, "folder", name="custom", compression="ignored")
    assert {r.relpath: r.split for r in records} == {
        "train/real/a.mp4": "train",
        "train/fake/b.mp4": "train",
        "test/fake/c.mp4": "test",
        "validation/real/d.mp4": "val",
    }
    assert {r.dataset for r in records} == {"custom"}


def test_folder_errors(tmp_path):
    place(tmp_path / "x", "videos/a.mp4")
    with pytest.raises(DatasetError, match="no media under a real/ or fake/"):
        read_folder(tmp_path / "x")
    with pytest.raises(DatasetError, match="unknown dataset"):
        read_dataset(tmp_path, "dfdc")
    with pytest.raises(DatasetError, match="val_fraction"):
        read_folder(tmp_path / "x", val_fraction=1.5)


# --------------------------------------------------------------------------- balancing


def test_balance_videos_undersamples_fakes_over_identities(large_celebdf):
    records = read_celebdf(large_celebdf, seed=3)
    before = class_counts(records)
    assert before["train"]["fake"] > before["train"]["real"]
    balanced = balance(records, "videos", seed=0)
    after = class_counts(balanced)
    assert after["train"]["fake"] == after["train"]["real"] == before["train"]["real"]
    assert after["val"] == before["val"] and after["test"] == before["test"]
    # Round-robin: every target identity that had train fakes keeps some.
    targets = {r.group for r in records if r.split == "train" and r.label == "fake"}
    kept = Counter(r.group for r in balanced if r.split == "train" and r.label == "fake")
    assert set(kept) == targets
    available = Counter(r.group for r in records if r.split == "train" and r.label == "fake")
    not_exhausted = [n for g, n in kept.items() if n < available[g]]
    assert max(not_exhausted) - min(not_exhausted) <= 1
    assert all(n <= max(not_exhausted) for n in kept.values())
    assert balanced == balance(records, "videos", seed=0)
    assert balanced != balance(records, "videos", seed=1)


def test_balance_frames_matches_frame_counts(large_celebdf):
    records = read_celebdf(large_celebdf, seed=3)
    counts = class_counts(records)["train"]
    balanced = balance(records, "frames", frames=8)
    assert len(balanced) == len(records)
    real_frames = {r.frames for r in balanced if r.split == "train" and r.label == "real"}
    assert real_frames == {round(8 * counts["fake"] / counts["real"])}
    assert {r.frames for r in balanced if not (r.split == "train" and r.label == "real")} == {None}
    total_real = counts["real"] * real_frames.pop()
    assert abs(total_real - counts["fake"] * 8) <= counts["real"]
    assert balance(records, "none") == records
    with pytest.raises(DatasetError, match="balance must be"):
        balance(records, "classes")


def test_assign_splits_fractions():
    sides = assign_splits([f"k{i}" for i in range(100)], 0.15, 0.1, seed=0)
    assert Counter(sides.values()) == {"train": 75, "val": 15, "test": 10}
    assert assign_splits(["only"], 0.5) == {"only": "train"}
