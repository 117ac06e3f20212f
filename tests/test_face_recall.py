"""Every face found, every file read (#28): the second look at full resolution where the 640-px pass misses a dim,
small face; faces on a confirmed track scored from MTCNN's own threshold; folder walks by suffix *and* content,
saying what they skip.

The dim clip is made here from a real face (the bundled FF++ example): its frames shrunk to a ~67 px face on a
dark 1920x1080 canvas at a tenth of its brightness, with sensor noise, the way a face in a dim room reaches a
1080p camera. Its 640-px pass finds that face in some frames and not in others; full resolution finds it.
"""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
from media_support import encode_clip

from fakelens.constants import DEFAULT_MIN_FACE_PROB
from fakelens.detector import Detector
from fakelens.faces import FaceCrop, FaceExtractor, detect_faces, scored_crops
from fakelens.folders import SKIP_HIDDEN, SKIP_NOT_MEDIA, walk_media
from fakelens.media import Frame, load_frames, media_kind
from fakelens.mtcnn import MTCNN
from fakelens.second_look import second_look

FRAMES = 12


def _dim_frames(examples, count: int = FRAMES, face_px: int = 67, brightness: float = 0.1) -> list[np.ndarray]:
    detector = MTCNN(min_face_size=60)
    rng = np.random.default_rng(0)
    out = []
    for frame in load_frames(examples / "real_ffpp_004.mp4", num_frames=count):
        face = max(detector.detect(frame.image)[0], key=lambda f: f.area)
        x1, y1, x2, y2 = (int(v) for v in face.box)
        side = int((x2 - x1) * 2.2)
        cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
        patch = frame.image[max(0, cy - side // 2) : cy + side // 2, max(0, cx - side // 2) : cx + side // 2]
        small = cv2.resize(
            patch, (int(patch.shape[1] * face_px / (x2 - x1)), int(patch.shape[0] * face_px / (x2 - x1))), interpolation=cv2.INTER_AREA
        )
        canvas = np.full((1080, 1920, 3), 12.0, np.float32)
        canvas[500 : 500 + small.shape[0], 900 : 900 + small.shape[1]] = 12.0 + small.astype(np.float32) * brightness
        canvas += rng.normal(0, 4, canvas.shape)
        out.append(np.clip(canvas, 0, 255).astype(np.uint8))
    return out


@pytest.fixture(scope="module")
def dim_frames(examples) -> list[np.ndarray]:
    return _dim_frames(examples)


def test_second_look_finds_the_dim_face_the_640_pass_misses(dim_frames):
    detector = MTCNN(min_face_size=60, detection_size=640)
    first = detect_faces(detector, dim_frames)
    full = detect_faces(detector.full_resolution(), dim_frames)
    missed = [k for k, faces in enumerate(first) if not faces]
    # The premise: the downscaled pass misses the face in some frames, found at full resolution.
    assert missed and any(full[k] for k in missed)
    looked = second_look(detector, dim_frames, first)

    def sure(faces_per_frame):
        return sum(any(f.prob >= DEFAULT_MIN_FACE_PROB for f in faces) for faces in faces_per_frame)

    assert sum(bool(f) for f in looked) > sum(bool(f) for f in first)
    assert sure(looked) >= sure(first) + 3  # unsure dim faces replaced by surer full-resolution ones
    for faces in looked:
        for face in faces:
            assert 880 <= face.box[0] <= 1000 and 480 <= face.box[1] <= 600  # where the face was put, in frame pixels
    # Frames that already had a sure face keep exactly their faces.
    assert all(looked[k] == first[k] for k in range(len(first)) if any(f.prob >= DEFAULT_MIN_FACE_PROB for f in first[k]))
    # The full-resolution detector is the same networks, not a copy of the weights.
    assert detector.full_resolution().pnet is detector.pnet and detector.full_resolution().detection_size is None


def test_frames_with_sure_faces_keep_them_and_small_frames_are_searched_for_smaller_faces(examples):
    detector = MTCNN(min_face_size=60, detection_size=640)
    clip = [f.image for f in load_frames(examples / "fake_dfdc_abhggqdift.mp4", num_frames=4)]  # 256 x 256, sure faces
    first = detect_faces(detector, clip)
    assert all(any(f.prob >= DEFAULT_MIN_FACE_PROB for f in faces) for faces in first)
    assert second_look(detector, clip, first) == first


def test_a_face_filling_a_small_clip_to_its_edges_is_found_without_the_canvas(shared_data):
    """A DFDC face-track clip (256 x 256) whose face grows to fill the frame: the padded canvas finds it unsure
    or not at all in its last frames, the frame itself surely (measured: 26 -> 32 of 32 frames)."""
    detector = MTCNN(min_face_size=60, detection_size=640)
    frames = [f.image for f in load_frames(shared_data / "videos/dfdc/0_aejvkfbtxs.mp4_0_0.mp4", num_frames=32)]
    first = detect_faces(detector, frames)
    looked = second_look(detector, frames, first)

    def sure(faces_per_frame):
        return sum(any(f.prob >= DEFAULT_MIN_FACE_PROB for f in faces) for faces in faces_per_frame)

    assert sure(first) <= 28 and sure(looked) >= 31
    assert all(looked[k] == first[k] for k in range(len(frames)) if any(f.prob >= DEFAULT_MIN_FACE_PROB for f in first[k]))


def test_a_file_with_few_faces_gets_a_full_resolution_pass(dim_frames):
    """No frame with a face at all: the full-resolution pass finds some, and the regions around them the rest."""
    detector = MTCNN(min_face_size=60, detection_size=640)
    looked = second_look(detector, dim_frames, [[] for _ in dim_frames])
    assert sum(any(f.prob >= DEFAULT_MIN_FACE_PROB for f in faces) for faces in looked) >= len(dim_frames) // 2


def _crop(frame: int, track: int, prob: float) -> FaceCrop:
    return FaceCrop(frame, frame / 10, track, (0, 0, 10, 10), prob, (), (0, 0, 13, 13), (), np.zeros((2, 2, 3), np.uint8))


def test_faces_on_a_confirmed_track_are_scored_from_mtcnns_own_threshold():
    crops = [_crop(0, 0, 0.99), _crop(1, 0, 0.75), _crop(2, 0, 0.65), _crop(0, 1, 0.8), _crop(1, 1, 0.85), _crop(3, -1, 0.99)]
    kept = scored_crops(crops, DEFAULT_MIN_FACE_PROB, 0.7)
    # track 0 holds a sure face, so its 0.75 face is scored (not its 0.65 one); track 1 holds none; -1 is off-track
    assert [(c.frame_index, c.track) for c in kept] == [(0, 0), (1, 0)]
    assert [(c.frame_index, c.track) for c in scored_crops(crops, DEFAULT_MIN_FACE_PROB, None)] == [(0, 0)]


@pytest.fixture(scope="module")
def dim_video(tmp_path_factory, dim_frames):
    path = tmp_path_factory.mktemp("dim") / "dim_1080p.mp4"
    return encode_clip(path, dim_frames, rate=4, options={"crf": "18", "preset": "veryfast"})


@pytest.mark.slow
def test_predict_scores_the_dim_face_in_more_frames_and_both_paths_agree(checkpoint, dim_video):
    options = dict(num_frames=FRAMES, keyframes="never")
    before = Detector.from_checkpoint(checkpoint, look_again=False, track_face_prob=None, **options).predict(dim_video)
    overlapped = Detector.from_checkpoint(checkpoint, **options).predict(dim_video)
    sequential = Detector.from_checkpoint(checkpoint, overlap=False, **options).predict(dim_video)
    assert len({f.frame_index for f in overlapped.faces}) >= len({f.frame_index for f in before.faces}) + 2
    assert [(f.frame_index, f.track, f.box) for f in overlapped.faces] == [(f.frame_index, f.track, f.box) for f in sequential.faces]
    assert overlapped.score == pytest.approx(sequential.score, abs=1e-4)


def test_extractor_with_look_again_off_is_the_first_pass(dim_frames):
    detector = MTCNN(min_face_size=60, detection_size=640)
    frames = [Frame(k, k / 4, image) for k, image in enumerate(dim_frames[:4])]
    off = FaceExtractor(detector, look_again=False).detect(frames)
    assert off == detect_faces(detector, [f.image for f in frames])


# --------------------------------------------------------------------------- every file read


@pytest.fixture(scope="module")
def media_folder(tmp_path_factory, examples):
    """MPEG-1 (.mpg), FLV (.flv) and WMV2 (.wmv) clips of a real face, an MP4 without a suffix, a text file, a
    hidden file and a PNG named .dat."""
    folder = tmp_path_factory.mktemp("walk")
    faces = [cv2.resize(f.image[100:500, 600:1000], (224, 224)) for f in load_frames(examples / "real_ffpp_004.mp4", num_frames=6)]
    encode_clip(folder / "grid.mpg", faces, "mpeg1video", rate=25, fmt="mpeg")
    encode_clip(folder / "talk.flv", faces, "flv", rate=25, fmt="flv")
    encode_clip(folder / "webcam.wmv", faces, "wmv2", rate=25, fmt="asf")
    (folder / "sub").mkdir()
    (folder / "sub" / "clip").write_bytes((examples / "real_ffpp_004.mp4").read_bytes())
    (folder / "notes.txt").write_text("not media\n")
    (folder / ".hidden.mp4").write_bytes(b"x")
    (folder / "still.dat").write_bytes((examples / "real_ffpp_ex_original.png").read_bytes())
    return folder


def test_folder_walk_takes_every_media_file_by_suffix_or_content(media_folder):
    media, skipped = walk_media(media_folder)
    assert [p.relative_to(media_folder).as_posix() for p in media] == ["grid.mpg", "still.dat", "sub/clip", "talk.flv", "webcam.wmv"]
    assert {(p.name, reason) for p, reason in skipped} == {("notes.txt", SKIP_NOT_MEDIA), (".hidden.mp4", SKIP_HIDDEN)}
    assert [media_kind(p) for p in media] == ["video", "image", "video", "video", "video"]


@pytest.mark.slow
def test_predict_on_a_folder_scores_every_clip_and_says_what_it_skipped(media_folder, checkpoint):
    out = subprocess.run(
        [sys.executable, "-m", "fakelens", "predict", str(media_folder), "--json", "--frames", "4", "--checkpoint", str(checkpoint)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    import json

    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert sorted(p.rsplit("/", 1)[-1] for p in (r["path"] for r in rows)) == ["clip", "grid.mpg", "still.dat", "talk.flv", "webcam.wmv"]
    assert all(r["label"] in ("REAL", "FAKE") for r in rows), rows
    assert "skipped 2 file(s)" in out.stderr and "notes.txt" in out.stderr
