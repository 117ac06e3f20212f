"""Explanations: heatmaps, rendering, galleries, faithfulness (ROAD) and sanity checks, on real crops."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from shared_paths import IMAGENET_WEIGHTS

from fakelens.constants import CAM_METHODS, DEFAULT_CAM_METHOD
from fakelens.explain import (
    EigenCAMExplainer,
    Explainer,
    ExplainError,
    GradCAMExplainer,
    GradCAMPlusPlusExplainer,
    ScoreCAMExplainer,
    available_methods,
    build_gallery,
    colorize,
    evaluate_faithfulness,
    get_explainer,
    overlay,
    overlay_on_frame,
    random_maps,
    randomization_sanity,
    randomized_model,
    register,
    render_explanation,
    road_scores,
    save_png,
    spearman,
    target_sanity,
)
from fakelens.media import read_image
from fakelens.model import DeepfakeClassifier, load_backbone_weights, preprocess_crops

ROOT = Path(__file__).resolve().parents[1]


def _hooks(model: torch.nn.Module) -> int:
    names = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    return sum(len(getattr(m, n)) for m in model.modules() for n in names)


def _resize(image: np.ndarray) -> np.ndarray:
    return cv2.resize(image, (224, 224), interpolation=cv2.INTER_AREA if min(image.shape[:2]) > 224 else cv2.INTER_CUBIC)


@pytest.fixture(scope="module")
def model() -> DeepfakeClassifier:
    """ImageNet backbone (when the shared weights exist) and a seeded random head: enough for mechanics."""
    torch.manual_seed(0)
    net = DeepfakeClassifier()
    if IMAGENET_WEIGHTS.is_file():
        load_backbone_weights(net, IMAGENET_WEIGHTS)
    return net.eval()


@pytest.fixture(scope="module")
def crops(examples) -> np.ndarray:
    """Three 224x224 crops around the faces of the bundled FF++ example frames."""
    real = read_image(examples / "real_ffpp_ex_original.png")
    fake = read_image(examples / "fake_ffpp_ex_deepfakes.png")
    return np.stack([real[100:324, 200:424], fake[100:324, 200:424], _resize(real[60:380, 150:470])])


def _cvit_files(shared_data: Path) -> list[Path]:
    return sorted((shared_data / "images" / "dfdc").glob("cvit__*/*.jpg"))


def _group(path: Path) -> str:
    return path.stem.rsplit("_", 1)[0]


@pytest.fixture(scope="module")
def trained(shared_data):
    """(model, crops, labels): the bundled model when present, else the ImageNet backbone with its head fitted
    for 150 cheap steps on DFDC face crops of other videos (groups never overlap). The bundled model's own
    training split differs, so some of these crops may be training crops for it; the tests below check
    that explanations follow the model, which does not need unseen crops (the held-out faithfulness
    figures come from ``fakelens explain --evaluate`` on its validation split)."""
    from fakelens.detector import DEFAULT_MODEL

    files = _cvit_files(shared_data)
    groups = sorted({_group(f) for f in files})
    held_out = set(groups[::3])
    test_files = [f for f in files if _group(f) in held_out]
    crops = np.stack([_resize(read_image(f)) for f in test_files])
    labels = ["fake" if "fake" in f.parent.name else "real" for f in test_files]
    if DEFAULT_MODEL.is_file():
        from fakelens.checkpoint import load_model

        return load_model(DEFAULT_MODEL)[0], crops, labels
    if not IMAGENET_WEIGHTS.is_file():
        pytest.skip("needs ../shared/weights/mobilenet_v2_imagenet.pth to build a test model")
    torch.manual_seed(0)
    net = DeepfakeClassifier()
    load_backbone_weights(net, IMAGENET_WEIGHTS)
    net.eval()
    train_files = [f for f in files if _group(f) not in held_out][::2]
    train = preprocess_crops(np.stack([_resize(read_image(f)) for f in train_files]))
    target = torch.tensor([1.0 if "fake" in f.parent.name else 0.0 for f in train_files])
    with torch.no_grad():
        pooled = net.pool(net.features(train))
    optimiser = torch.optim.Adam(net.head.parameters(), lr=1e-3, weight_decay=1e-4)
    net.head.train()
    for _ in range(150):
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net.head(pooled).squeeze(1), target)
        loss.backward()
        optimiser.step()
    return net.eval(), crops, labels


# --------------------------------------------------------------------------- heatmaps


@pytest.mark.parametrize("method", list(CAM_METHODS))
def test_heatmaps_shape_range_and_scores(model, crops, method):
    kwargs = {"max_channels": 8} if method == "scorecam" else {}
    explanation = Explainer(model, method=method, **kwargs).explanation(crops, target="fake")
    heatmaps = explanation.heatmaps
    assert heatmaps.shape == (3, 224, 224) and heatmaps.dtype == np.float32
    assert heatmaps.min() >= 0.0 and heatmaps.max() <= 1.0
    # Each map is scaled to its peak, exactly, whatever the magnitude of the raw map (on a random
    # backbone, as in a clone without ../shared, raw Grad-CAM values are ~1e-11).
    np.testing.assert_array_equal(heatmaps.reshape(3, -1).max(axis=1), np.ones(3, np.float32))
    assert heatmaps.reshape(3, -1).std(axis=1).min() > 0.01  # not flat
    with torch.no_grad():
        expected = torch.sigmoid(model(preprocess_crops(crops))).numpy()
    np.testing.assert_allclose(explanation.scores, expected, atol=1e-5)
    assert explanation.targets == ["fake"] * 3
    data = explanation.to_dict()
    assert data["method"] == method and len(data["peaks"]) == 3 and data["heatmap_shape"] == [3, 224, 224]


def test_constructor_dispatch_and_errors(model, crops):
    assert type(Explainer(model)) is GradCAMExplainer
    assert type(Explainer(model, method="Grad-CAM++")) is GradCAMPlusPlusExplainer
    assert type(Explainer(model, method="scorecam")) is ScoreCAMExplainer
    assert type(Explainer(model, method="eigencam")) is EigenCAMExplainer
    assert EigenCAMExplainer.class_specific is False and GradCAMExplainer.class_specific is True
    with pytest.raises(ExplainError, match="unknown explanation method"):
        Explainer(model, method="lime")
    explainer = Explainer(model)
    with pytest.raises(ExplainError, match="224"):
        explainer.explain(np.zeros((2, 100, 100, 3), np.uint8))
    with pytest.raises(ExplainError, match="uint8"):
        explainer.explain(crops.astype(np.float32))
    with pytest.raises(ExplainError, match="no crops"):
        explainer.explain([])
    with pytest.raises(ExplainError, match="unknown target"):
        explainer.explain(crops, target="both")


def test_registry_holds_exactly_the_cam_methods(model):
    """Method names come from fakelens.constants alone: the registry, the CLI and the defaults agree."""
    from fakelens.cli.explain import METHOD_CHOICES

    assert available_methods() == Explainer.methods() == list(CAM_METHODS) == METHOD_CHOICES
    assert available_methods()[0] == DEFAULT_CAM_METHOD and type(Explainer(model)) is get_explainer(DEFAULT_CAM_METHOD)
    for name, label in CAM_METHODS.items():
        assert get_explainer(name).method == name
        assert Explainer.resolve_method(label) == name  # display labels are accepted spellings
    assert get_explainer("Grad_CAM++") is GradCAMPlusPlusExplainer
    with pytest.raises(ExplainError, match="CAM_METHODS"):

        @register
        class LimeExplainer(Explainer):
            method = "lime"

    with pytest.raises(ExplainError, match="already registered"):

        @register
        class OtherGradCAM(GradCAMExplainer):
            pass

    assert get_explainer("gradcam") is GradCAMExplainer and available_methods() == list(CAM_METHODS)


def test_gradcam_matches_a_hand_computation(model, crops):
    """Hooks on the block ending in an in-place ReLU6 capture the right activations and gradients."""
    x = preprocess_crops(crops)
    activations = model.features(x).detach().requires_grad_(True)
    logits = model.head(model.pool(activations)).squeeze(1)
    (gradients,) = torch.autograd.grad(logits.sum(), activations)
    weights = gradients.mean(dim=(2, 3))
    cams = torch.relu((weights[:, :, None, None] * activations).sum(dim=1)).detach().numpy()
    expected = []
    for cam in cams:
        assert cam.max() > 0
        cam = cv2.resize(cam / cam.max(), (224, 224))  # scaled by its own peak: no epsilon to skew small maps
        expected.append((cam - cam.min()) / (cam.max() - cam.min()))
    np.testing.assert_allclose(Explainer(model).explain(crops, target="fake"), np.stack(expected), atol=1e-4)


def test_gradcam_maps_do_not_depend_on_the_logit_scale(model, crops):
    """Scaling the last layer by 1e-9 scales every Grad-CAM weight and so the raw map, by 1e-9: the
    heatmaps, scaled to their own peaks, must not change. A zero last layer gives zero evidence, and
    all-zero maps."""
    import copy

    reference = Explainer(model).explain(crops, target="fake")
    small = copy.deepcopy(model)
    with torch.no_grad():
        small.head[-1].weight.mul_(1e-9)
        small.head[-1].bias.mul_(1e-9)
    scaled = Explainer(small).explain(crops, target="fake")
    np.testing.assert_array_equal(scaled.reshape(3, -1).max(axis=1), np.ones(3, np.float32))
    np.testing.assert_allclose(scaled, reference, atol=1e-4)
    with torch.no_grad():
        small.head[-1].weight.zero_()
    np.testing.assert_array_equal(Explainer(small).explain(crops, target="fake"), np.zeros((3, 224, 224), np.float32))


def test_model_is_left_unchanged(model, crops):
    state = {k: v.clone() for k, v in model.state_dict().items()}
    hooks = _hooks(model)
    model.train()
    model.head[-1].weight.requires_grad_(False)
    existing = torch.ones_like(model.head[2].weight)
    model.head[2].weight.grad = existing
    try:
        for method in (m for m in CAM_METHODS if m != "scorecam"):  # all but the slow one
            Explainer(model, method=method).explain(crops[:2])
        with torch.inference_mode():  # as a UI's predict loop may call it
            Explainer(model).explain(crops[:1])
        assert model.training and all(m.training for m in model.modules())
        assert _hooks(model) == hooks
        assert model.head[2].weight.grad is existing
        assert model.head[-1].weight.requires_grad is False
        assert all(p.requires_grad for n, p in model.named_parameters() if n != "head.5.weight")
        assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    finally:
        model.head[2].weight.grad = None
        model.head[-1].weight.requires_grad_(True)
        model.eval()


def test_deterministic(model, crops):
    for explainer in (Explainer(model), Explainer(model, method="scorecam", max_channels=8)):
        first = explainer.explain(crops, target="real")
        second = explainer.explain(crops, target="real")
        np.testing.assert_array_equal(first, second)


def test_predicted_target_follows_the_threshold(model, crops):
    with torch.no_grad():
        scores = torch.sigmoid(model(preprocess_crops(crops))).numpy()
    low, high = float(scores.min()) * 0.5, (1.0 + float(scores.max())) / 2
    all_fake = Explainer(model, threshold=low).explanation(crops)
    all_real = Explainer(model, threshold=high).explanation(crops)
    assert all_fake.targets == ["fake"] * 3 and all_real.targets == ["real"] * 3
    np.testing.assert_array_equal(all_fake.heatmaps, Explainer(model).explain(crops, "fake"))
    np.testing.assert_array_equal(all_real.heatmaps, Explainer(model).explain(crops, "real"))


# --------------------------------------------------------------------------- rendering


def test_overlay_shapes_and_blending(crops):
    heatmap = np.tile(np.linspace(0, 1, 224, dtype=np.float32), (224, 1))
    shown = overlay(crops[0], heatmap)
    assert shown.shape == (224, 224, 3) and shown.dtype == np.uint8
    np.testing.assert_array_equal(overlay(crops[0], heatmap, alpha=0.0), crops[0])
    np.testing.assert_array_equal(overlay(crops[0], heatmap, alpha=1.0, colormap="inferno"), colorize(heatmap, "inferno"))
    assert overlay(crops[0], heatmap[::4, ::4]).shape == (224, 224, 3)  # a coarse map is resized to the crop
    hot, cold = colorize(np.array([[1.0, 0.0]]), "jet")[0]
    assert hot[0] > hot[2] and cold[2] > cold[0]  # jet: red for relevant, blue for not
    with pytest.raises(ExplainError, match="colormap"):
        colorize(heatmap, "no-such-map")
    with pytest.raises(ExplainError, match="alpha"):
        overlay(crops[0], heatmap, alpha=1.5)


def test_frame_mapping_puts_the_heat_inside_the_box():
    frame = np.full((300, 400, 3), 128, np.uint8)
    heatmap = np.zeros((224, 224), np.float32)
    heatmap[20:60, 20:60] = 1.0  # hot in the crop's top-left corner
    box = (-40.0, 100.0, 160.0, 300.0)  # a 200 px square reaching past the left border
    shown = overlay_on_frame(frame, heatmap, box, alpha=0.6, colormap="gray")  # brightness = relevance
    assert shown.shape == frame.shape and shown.dtype == np.uint8
    changed = np.argwhere(np.any(shown != frame, axis=2))
    assert changed[:, 1].min() >= 0 and changed[:, 1].max() < 160  # x inside the clipped box
    assert changed[:, 0].min() >= 100 and changed[:, 0].max() < 300  # y inside the box
    hot = np.argwhere(shown.astype(int).sum(axis=2) == shown.astype(int).sum(axis=2).max())
    # Crop pixels 20..60 at 200/224 frame px each from (x1, y1) = (-40, 100): frame x -22..14 (clipped to
    # 0..14), y 118..154.
    assert hot[:, 1].min() >= 0 and hot[:, 1].max() <= 15 and hot[:, 0].min() >= 117 and hot[:, 0].max() <= 155
    np.testing.assert_array_equal(overlay_on_frame(frame, heatmap, (500, 10, 600, 110)), frame)  # wholly outside
    # The matrix path (for aligned crops) agrees with the box path for a plain scale + shift.
    scale = 200 / 224
    matrix = np.array([[scale, 0, -40], [0, scale, 100]])
    by_matrix = overlay_on_frame(frame, heatmap, box, alpha=0.6, colormap="gray", matrix=matrix)
    assert np.abs(by_matrix.astype(int) - shown.astype(int)).mean() < 2.0


def test_render_and_save(tmp_path, crops):
    heatmap = random_maps(1, seed=1)[0]
    frame = np.zeros((240, 320, 3), np.uint8)
    frame[8:232, 48:272] = crops[0]
    figure = render_explanation(crops[0], heatmap, 0.83, frame=frame, crop_box=(48, 8, 272, 232), face_box=(80, 40, 240, 200))
    assert figure.ndim == 3 and figure.shape[2] == 3 and figure.dtype == np.uint8 and figure.shape[1] > figure.shape[0]
    small = render_explanation(crops[0], heatmap, 0.12, target="real", colormap="inferno")
    assert small.shape[1] < figure.shape[1]
    path = save_png(figure, tmp_path / "deep" / "figure.png")
    assert path.is_file() and not list(tmp_path.rglob("*.tmp"))
    np.testing.assert_array_equal(read_image(path), figure)


def test_gallery_cells_counts_and_files(tmp_path, crops):
    images = np.concatenate([crops, crops])
    heatmaps = random_maps(6, seed=2)
    labels = ["real", "real", "fake", "fake", "fake", "real"]
    scores = [0.1, 0.8, 0.9, 0.3, 0.6, 0.45]
    gallery = build_gallery(images, heatmaps, labels, scores, threshold=0.5, max_tiles=2, tile_size=96)
    assert gallery.counts == {"real_correct": 2, "real_wrong": 1, "fake_correct": 2, "fake_wrong": 1}
    assert gallery.shown["real_correct"] == [0, 5]  # most confident first
    assert all(g.dtype == np.uint8 and g.shape[2] == 3 for g in gallery.grids.values())
    assert gallery.mean_heatmaps.ndim == 3
    paths = gallery.save(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {
        "gallery_real_correct.png", "gallery_real_wrong.png", "gallery_fake_correct.png",
        "gallery_fake_wrong.png", "gallery_mean_heatmaps.png", "gallery.json",
    }  # fmt: skip
    assert json.loads(paths["index"].read_text())["counts"]["fake_wrong"] == 1
    with pytest.raises(ExplainError, match="labels"):
        build_gallery(images, heatmaps, ["maybe"] * 6, scores)
    with pytest.raises(ExplainError, match="length"):
        build_gallery(images, heatmaps, labels[:5], scores)


# --------------------------------------------------------------------------- trust


def test_spearman():
    a = np.arange(16.0).reshape(4, 4)
    assert spearman(a, a * 3 + 1) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert np.isnan(spearman(a, np.zeros_like(a)))


def test_real_and_fake_targets_give_different_maps(trained):
    model, crops, _ = trained
    gradcam = target_sanity(model, crops[:6], "gradcam")
    assert gradcam.n == 6 and gradcam.spearman_mean < 0.3
    # Eigen-CAM ignores the target by construction: the check exposes it.
    assert target_sanity(model, crops[:3], "eigencam").spearman_mean == pytest.approx(1.0)


def test_randomised_weights_change_gradcam_maps(trained):
    model, crops, _ = trained
    subset = crops[:6]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    full = randomization_sanity(model, subset, "gradcam", mode="full")
    assert full.final.layers == "all" and abs(full.final.spearman_mean) < 0.5
    cascade = randomization_sanity(model, subset, "gradcam", mode="cascade", max_stages=2)
    assert [s.layers for s in cascade.stages] == ["head and above", "features.18 and above"]
    assert all(abs(s.spearman_mean) < 0.5 for s in cascade.stages)
    # The measure can see sameness: a "randomisation" of nothing keeps the maps.
    unchanged = Explainer(randomized_model(model, layers=[], crops=subset)).explain(subset, "fake")
    reference = Explainer(model).explain(subset, "fake")
    assert np.mean([spearman(a, b) for a, b in zip(reference, unchanged)]) > 0.999
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_fast_road_imputation_equals_pytorch_grad_cam(model, crops):
    from pytorch_grad_cam.metrics.road import ROADMostRelevantFirst

    from fakelens.explain import LogitTarget

    maps = random_maps(1, seed=3)
    targets = [LogitTarget(1)]
    x = preprocess_crops(crops[:1])
    torch.manual_seed(0)
    expected = ROADMostRelevantFirst(80)(x, maps, targets, model)
    # road_scores seeds the imputation noise with seed*1000 + percentile_index*100 + start = 0, as above.
    ours = road_scores(model, crops[:1], maps, ["fake"], percentiles=[80], seed=0, break_ties=False)
    np.testing.assert_allclose(ours["morf"], expected, rtol=1e-6, atol=1e-6)


def test_road_progress_bar_counts_the_real_steps(model, crops, monkeypatch):
    """The ROAD bar's total is the number of updates it gets, whatever the percentiles and crops."""
    import tqdm

    from fakelens.explain import road_steps

    bars = []

    class Bar:
        def __init__(self, total=None, **kwargs):
            self.total, self.n = total, 0
            bars.append(self)

        def update(self, steps=1):
            self.n += steps

        def close(self):
            pass

    monkeypatch.setattr(tqdm, "tqdm", Bar)
    evaluate_faithfulness(model, crops[:2], methods=["eigencam"], percentiles=[80], progress=True)
    (bar,) = bars
    assert bar.total == bar.n == 2 * road_steps(2, [80])  # eigencam and random, one percentile, one batch
    assert road_steps(65, [20, 40, 60], batch_size=32) == 9


@pytest.mark.slow
def test_gradcam_is_more_faithful_than_random_maps(trained):
    model, crops, _ = trained
    report = evaluate_faithfulness(model, crops[:6], methods=["gradcam"], percentiles=[50, 80])
    rows = {row.method: row for row in report.rows}
    assert set(rows) == {"gradcam", "random"} and rows["gradcam"].n == 6
    assert rows["gradcam"].mean > rows["random"].mean
    assert rows["gradcam"].delta_vs_random > 0 and rows["gradcam"].win_rate >= 0.5
    assert "gradcam" in report.format_table() and report.to_dict()["n"] == 6


# --------------------------------------------------------------------------- command line


def run_cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "fakelens", "explain", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_cli_explains_an_image(checkpoint, examples, tmp_path):
    result = run_cli(str(examples / "fake_ffpp_ex_deepfakes.png"), "--out", str(tmp_path), "--checkpoint", str(checkpoint))
    assert result.returncode == 0, result.stderr
    index = json.loads((tmp_path / "explain.json").read_text())
    assert index["kind"] == "image" and index["faces"]
    scores = [face["score"] for face in index["faces"]]
    assert scores == sorted(scores, reverse=True)
    first = index["faces"][0]
    assert first["rank"] == 1 and first["file"].startswith("rank01_p") and (tmp_path / first["file"]).is_file()
    figure = read_image(tmp_path / first["file"])
    assert figure.shape[1] > 600


@pytest.mark.slow
def test_cli_explains_a_video_top_k(checkpoint, examples, tmp_path):
    result = run_cli(str(examples / "real_dfdc_aayrffkzxn.mp4"), "--out", str(tmp_path), "--checkpoint", str(checkpoint),
                     "--frames", "3", "--top", "2", "--method", "gradcam++", "--target", "fake")  # fmt: skip
    assert result.returncode == 0, result.stderr
    index = json.loads((tmp_path / "explain.json").read_text())
    assert index["method"] == "gradcam++" and len(index["faces"]) == 2
    assert all(face["target"] == "fake" for face in index["faces"])
    assert sorted(p.name for p in tmp_path.glob("rank*.png")) == sorted(f["file"] for f in index["faces"])


@pytest.mark.slow
def test_cli_gallery_and_evaluate(checkpoint, shared_data, tmp_path):
    from fakelens.data import manifest_from_face_images

    files = _cvit_files(shared_data)
    entries = [{"path": f, "label": "fake" if "fake" in f.parent.name else "real", "split": "test"} for f in files[::8]]
    manifest = manifest_from_face_images(entries, tmp_path / "set")
    gallery = run_cli("--gallery", "--manifest", str(manifest), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "g"))
    assert gallery.returncode == 0, gallery.stderr
    index = json.loads((tmp_path / "g" / "gallery.json").read_text())
    assert sum(index["counts"].values()) == len(entries)
    assert (tmp_path / "g" / "gallery_mean_heatmaps.png").is_file()

    evaluate = run_cli("--evaluate", "--images", str(tmp_path / "set" / "crops"), "--checkpoint", str(checkpoint),
                       "--methods", "gradcam", "--percentiles", "80", "--limit", "3", "--out", str(tmp_path / "e"))  # fmt: skip
    assert evaluate.returncode == 0, evaluate.stderr
    assert "ROAD combined" in evaluate.stdout and "gradcam" in evaluate.stdout and "random" in evaluate.stdout
    assert "REAL vs FAKE target" in evaluate.stdout
    report = json.loads((tmp_path / "e" / "faithfulness.json").read_text())
    assert report["faithfulness"]["n"] == 3 and "gradcam" in report["sanity"]


def test_cli_usage_errors(tmp_path, examples):
    missing = run_cli(str(examples / "fake_ffpp_ex_deepfakes.png"))
    assert missing.returncode == 2 and "--out" in missing.stderr
    no_manifest = run_cli("--gallery", "--out", str(tmp_path))
    assert no_manifest.returncode == 1 and "--manifest" in no_manifest.stderr
    both = run_cli("--gallery", "--evaluate")
    assert both.returncode == 1 and "one of" in both.stderr
    colours = run_cli(str(examples / "fake_ffpp_ex_deepfakes.png"), "--out", str(tmp_path), "--colormap", "plaid")
    assert colours.returncode == 1 and "--colormap" in colours.stderr


@pytest.mark.slow
def test_cli_model_errors(tmp_path, examples):
    from fakelens.detector import DEFAULT_MODEL

    bad_checkpoint = tmp_path / "bad.pt"
    bad_checkpoint.write_bytes(b"not a checkpoint")
    broken = run_cli("--evaluate", "--images", str(examples), "--checkpoint", str(bad_checkpoint))
    assert broken.returncode == 1 and "bad.pt" in broken.stderr and "Traceback" not in broken.stderr
    if not DEFAULT_MODEL.is_file():
        no_model = run_cli(str(examples / "fake_ffpp_ex_deepfakes.png"), "--out", str(tmp_path))
        assert no_model.returncode == 1 and "--checkpoint" in no_model.stderr


def test_threshold_is_checked_the_same_way_as_predict(model, examples, capsys):
    """`explain --threshold` and Explainer(threshold=) give predict's one message (fakelens.constants.check_threshold)."""
    from fakelens.cli import main
    from fakelens.errors import InvalidArgument

    assert main(["explain", str(examples / "real_ffpp_ex_original.png"), "--threshold", "1.5"]) == 1
    assert "threshold must be in [0, 1], got 1.5" in capsys.readouterr().err
    with pytest.raises(InvalidArgument, match=r"threshold must be in \[0, 1\], got -0.2"):
        Explainer(model, threshold=-0.2)
