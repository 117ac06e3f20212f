"""The Streamlit app through streamlit.testing's AppTest: examples, uploads, no face, bad files, settings.

Each test runs the real app script (app.py -> fakelens.ui) on the real model: the bundled one when it is
installed, else a checkpoint built from the shared ImageNet backbone (see tests/app_support.py).
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

import pytest
from app_support import EXAMPLES, ROOT, bundled_model_usable, faceless_image, make_checkpoint, png_bytes
from streamlit.testing.v1 import AppTest

APP = ROOT / "app.py"
#: Generous: the first analysis also exports the model to ONNX, and CI machines are slow.
TIMEOUT = 300
FRAMES = 4


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("model"))


@pytest.fixture(autouse=True)
def app_env(checkpoint, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FAKELENS_CACHE", str(tmp_path_factory.getbasetemp() / "fakelens-cache"))
    if bundled_model_usable():
        monkeypatch.delenv("FAKELENS_CHECKPOINT", raising=False)
    else:
        monkeypatch.setenv("FAKELENS_CHECKPOINT", str(checkpoint))
    monkeypatch.delenv("FAKELENS_EXAMPLES", raising=False)


def start(frames: int = FRAMES) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    at.number_input(key="frames").set_value(frames)
    at.run()
    return at


def verdict(at: AppTest) -> str | None:
    """The verdict word on the page (FAKE, REAL, "no face found"), or None when there is none."""
    for markdown in at.markdown:
        match = re.fullmatch(r"## Verdict: :\w+\[(.+)\]", markdown.value)
        if match:
            return match.group(1)
    return None


def upload(at: AppTest, name: str, data: bytes, mime: str) -> AppTest:
    at.file_uploader(key="upload").set_value((name, data, mime))
    at.run()
    assert not at.exception, at.exception
    return at


def captions(at: AppTest) -> list[str]:
    return [c for image in at.get("image") for c in image.captions]


def charts(at: AppTest) -> list:
    return [e for e in at.get("vega_lite_chart")]


def leftover_uploads() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("fakelens-upload-*")}


def test_start_page_offers_examples_and_settings():
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    assert verdict(at) is None and at.info  # nothing analysed until something is chosen
    names = {b.label for b in at.button}
    assert {p.name for p in EXAMPLES.iterdir() if p.suffix in {".mp4", ".png"}} <= names
    uploader = at.file_uploader(key="upload")
    from fakelens.constants import DEFAULT_CAM_METHOD, DEFAULT_FRAMES, DEFAULT_MAX_UPLOAD_MB, IMAGE_SUFFIXES, VIDEO_SUFFIXES

    # The picker offers exactly what fakelens.media reads, and the defaults are the library's.
    offered, readable = {t.lstrip(".") for t in uploader.allowed_type}, {s.lstrip(".") for s in IMAGE_SUFFIXES | VIDEO_SUFFIXES}
    assert readable <= offered and offered - readable <= {"mpeg4"}  # Streamlit adds mpeg4 beside mp4 itself
    assert f"{DEFAULT_MAX_UPLOAD_MB} MB" in uploader.label
    assert at.number_input(key="frames").value == DEFAULT_FRAMES
    assert at.selectbox(key="aggregate").value == "mean"
    assert at.selectbox(key="method").value == DEFAULT_CAM_METHOD
    assert 0.0 < at.slider(key="threshold").value < 1.0
    assert any("About the model" in e.label for e in at.expander)
    assert not any("No example media" in i.value for i in at.info)


@pytest.mark.slow
def test_example_pick_shows_verdict_timeline_and_heatmaps():
    at = start()
    at.button(key="example:real_ffpp_004.mp4").click()
    at.run()
    assert not at.exception and not at.error
    assert verdict(at) in ("REAL", "FAKE")
    labels = {m.label: m.value for m in at.metric}
    assert 0.0 <= float(labels["P(fake)"]) <= 1.0 and labels["Certainty"].endswith("%")
    assert labels["Faces / frames"].endswith(f"/ {FRAMES}")
    assert charts(at), "no score timeline"
    shown = captions(at)
    assert sum("Grad-CAM overlay" in c for c in shown) >= 1
    assert sum("heatmap on the frame" in c for c in shown) >= 1
    assert {d.label for d in at.get("download_button")} >= {"JSON report", "CSV (a row per face)"}


@pytest.mark.slow
def test_uploaded_image_gets_the_libraries_verdict(checkpoint):
    from fakelens.detector import Detector

    path = EXAMPLES / "fake_ffpp_ex_deepfakes.png"
    before = leftover_uploads()
    at = upload(start(), "suspect.png", path.read_bytes(), "image/png")
    expected = Detector.from_checkpoint(checkpoint).predict(path)
    assert verdict(at) == expected.label
    assert float(next(m.value for m in at.metric if m.label == "Threshold")) == pytest.approx(expected.threshold, rel=1e-3)
    assert float(next(m.value for m in at.metric if m.label == "P(fake)")) == pytest.approx(expected.score, abs=1e-3)
    assert any("suspect.png" in c.value for c in at.caption)
    assert not charts(at)  # one frame: no timeline
    assert any("overlay" in c for c in captions(at))
    assert leftover_uploads() <= before  # the temporary copy is gone


@pytest.mark.slow
def test_uploaded_video_and_method_switch():
    at = upload(start(), "clip.mp4", (EXAMPLES / "real_ffpp_004.mp4").read_bytes(), "video/mp4")
    assert verdict(at) in ("REAL", "FAKE") and charts(at)
    assert any("Grad-CAM overlay" in c for c in captions(at))
    (analysis,) = at.session_state["analyses"].values()
    at.selectbox(key="method").set_value("gradcam++")
    at.run()
    assert not at.exception
    assert any("Grad-CAM++ overlay" in c for c in captions(at))
    # Only the maps were recomputed: same analysis object, now with both methods.
    assert list(at.session_state["analyses"].values()) == [analysis]
    assert set(analysis.heatmaps) == {"gradcam", "gradcam++"}


@pytest.mark.slow
def test_default_threshold_is_the_models_own_unrounded(monkeypatch, tmp_path, checkpoint):
    from fakelens.checkpoint import load_model, save_checkpoint

    model, _ = load_model(checkpoint)
    monkeypatch.setenv("FAKELENS_CHECKPOINT", str(save_checkpoint(tmp_path / "t.pt", model, threshold=0.437, name="t")))
    at = upload(start(), "face.png", (EXAMPLES / "real_ffpp_ex_original.png").read_bytes(), "image/png")
    assert at.slider(key="threshold").value == pytest.approx(0.44)  # the slider moves in 0.01 steps
    assert next(m.value for m in at.metric if m.label == "Threshold") == "0.437"  # the verdict used the exact one
    at.slider(key="threshold").set_value(0.30)
    at.run()
    assert next(m.value for m in at.metric if m.label == "Threshold") == "0.3"


@pytest.mark.slow
def test_two_uploads_in_a_row_do_not_mix():
    at = upload(start(), "first.png", (EXAMPLES / "fake_ffpp_ex_deepfakes.png").read_bytes(), "image/png")
    first = next(m.value for m in at.metric if m.label == "P(fake)")
    upload(at, "second.png", (EXAMPLES / "real_ffpp_ex_original.png").read_bytes(), "image/png")
    page = " ".join(c.value for c in at.caption)
    assert "second.png" in page and "first.png" not in page
    second = next(m.value for m in at.metric if m.label == "P(fake)")
    assert first != second
    assert len(at.session_state["analyses"]) == 2


@pytest.mark.slow
def test_image_without_a_face():
    at = upload(start(), "skyline.png", png_bytes(faceless_image()), "image/png")
    assert verdict(at) == "no face found"
    assert at.warning and "No face was found" in at.warning[0].value
    assert not at.error and not captions(at)


def test_text_renamed_to_mp4_is_refused_clearly():
    before = leftover_uploads()
    at = upload(start(), "holiday.mp4", b"this is a text file, not a video\n" * 20, "video/mp4")
    assert verdict(at) is None
    assert len(at.error) == 1
    message = at.error[0].value
    assert message.startswith("Could not analyse holiday.mp4") and "fakelens-upload" not in message
    assert "Traceback" not in message
    assert leftover_uploads() <= before


def test_file_over_the_upload_limit_is_refused():
    from streamlit import config

    previous = config.get_option("server.maxUploadSize")
    config.set_option("server.maxUploadSize", 1)
    try:
        at = upload(start(), "big.mp4", (EXAMPLES / "fake_ffpp_NeuralTextures_004_982.mp4").read_bytes(), "video/mp4")
    finally:
        config.set_option("server.maxUploadSize", previous)
    assert verdict(at) is None
    assert "above the 1 MB upload limit" in at.error[0].value
    assert "up to 1 MB" in at.file_uploader(key="upload").label


def test_model_panel_shows_the_model_card(monkeypatch, tmp_path):
    import fakelens.ui

    card = tmp_path / "MODEL_CARD.md"
    card.write_text("# Model card\n\nTrained on the media listed here; limitations apply.\n", encoding="utf-8")
    monkeypatch.setattr(fakelens.ui, "MODEL_CARD", card)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    (panel,) = [e for e in at.expander if e.label == "About the model"]
    texts = [m.value for m in panel.markdown]
    assert any("Trained on the media listed here" in t for t in texts)
    assert any("Decision threshold" in t for t in texts)


def test_model_that_cannot_load_is_reported(monkeypatch, tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    monkeypatch.setenv("FAKELENS_CHECKPOINT", str(broken))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    assert at.error and at.error[0].value.startswith("The model could not be loaded")


def test_examples_picker_hidden_without_examples(monkeypatch, tmp_path):
    import fakelens.ui

    monkeypatch.chdir(tmp_path)
    # As in a non-editable install: no examples folder next to the package or in the working folder.
    monkeypatch.setattr(fakelens.ui, "__file__", str(tmp_path / "site-packages" / "fakelens" / "ui.py"))
    assert fakelens.ui.examples_dir() is None
    # The page still offers the upload, and says plainly why there are no examples.
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception and not at.error
    assert at.file_uploader(key="upload").label.startswith("Upload a video")
    assert not [b for b in at.button if b.key and b.key.startswith("example:")]
    assert [i.value for i in at.info if i.value == fakelens.ui.NO_EXAMPLES_TEXT]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "a.mp4").write_bytes(b"x")
    monkeypatch.setenv("FAKELENS_EXAMPLES", str(tmp_path / "mine"))
    assert fakelens.ui.examples_dir() == tmp_path / "mine"


def test_fakelens_app_command(tmp_path):
    from fakelens.cli import build_parser, main
    from fakelens.cli.app import command

    args = build_parser().parse_args(["app", "--port", "8765", "--headless", "--", "--server.address", "127.0.0.1"])
    cmd = command(args)
    script = Path(cmd[cmd.index("run") + 1])
    assert script.name == "ui.py" and script.parent.name == "fakelens"  # the packaged module, not the repo's app.py
    assert cmd[cmd.index("--server.maxUploadSize") + 1] == "200"
    assert cmd[-2:] == ["--server.address", "127.0.0.1"]
    assert main(["app", "--checkpoint", str(tmp_path / "missing.pt")]) == 1


@pytest.mark.slow
def test_fakelens_app_serves(checkpoint):
    import urllib.request

    from app_support import screenshot_tools

    tools = screenshot_tools()
    port = tools.free_port()
    fakelens = Path(sys.executable).with_name("fakelens")
    command = [str(fakelens), "app", "--headless", "--port", str(port), "--checkpoint", str(checkpoint)]
    with tools.serve(port=port, command=command) as url:
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200 and b"<html" in response.read().lower()
