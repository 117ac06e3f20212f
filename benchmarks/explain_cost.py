"""What an explanation costs: explaining N face crops against predicting them, per method, in the same process.

The baseline is one batched, no-grad forward pass of the classifier over the crops (what ``Detector``
does to score them). Each explainer then produces heatmaps *and* the same scores for those crops.
Runs are interleaved (baseline, then each method, per repeat) and the median is reported.

    .venv/bin/python benchmarks/explain_cost.py [--crops 32] [--repeat 3] [--methods gradcam,eigencam]  (default: every registered method)
        [--checkpoint PATH] [--scorecam-channels 64]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from fakelens.constants import CAM_METHODS
from fakelens.explain import Explainer
from fakelens.media import read_image
from fakelens.model import DeepfakeClassifier, load_backbone_weights, preprocess_crops
from fakelens.sysinfo import describe_machine

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def load_classifier(checkpoint: Path | None) -> tuple[torch.nn.Module, str]:
    from fakelens.checkpoint import load_model
    from fakelens.detector import DEFAULT_MODEL

    path = checkpoint or (DEFAULT_MODEL if DEFAULT_MODEL.is_file() else None)
    if path is not None:
        model, info = load_model(path)
        return model.eval(), str(info.get("name"))
    # Cost does not depend on the weights; an ImageNet backbone with a seeded head is the same network.
    torch.manual_seed(0)
    model = DeepfakeClassifier()
    weights = SHARED / "weights" / "mobilenet_v2_imagenet.pth"
    if weights.is_file():
        load_backbone_weights(model, weights)
    return model.eval(), "imagenet-backbone (no bundled model)"


def face_crops(count: int) -> np.ndarray:
    """Real face crops: DFDC crops from ../shared/data when present, else windows of the bundled FF++ frames."""
    files = sorted((SHARED / "data" / "images" / "dfdc").glob("cvit__*/*.jpg"))
    if files:
        picks = np.linspace(0, len(files) - 1, count).round().astype(int)
        return np.stack([cv2.resize(read_image(files[i]), (224, 224), interpolation=cv2.INTER_AREA) for i in picks])
    frames = [read_image(ROOT / "examples" / n) for n in ("real_ffpp_ex_original.png", "fake_ffpp_ex_deepfakes.png")]
    rng = np.random.default_rng(0)
    crops = []
    for i in range(count):
        frame = frames[i % 2]
        y, x = rng.integers(60, 140), rng.integers(160, 240)
        crops.append(frame[y : y + 224, x : x + 224])
    return np.stack(crops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crops", type=int, default=32, help="crops per run (default 32)")
    parser.add_argument("--repeat", type=int, default=3, help="timed repeats; the median is reported (default 3)")
    parser.add_argument("--methods", default=",".join(CAM_METHODS), help="methods to time, comma-separated (default: all registered)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="model (default: bundled, else ImageNet backbone)")
    parser.add_argument(
        "--scorecam-channels", type=int, default=64, help="Score-CAM channels scored per crop (default 64, the explainer's default; 0 = all 1280)"
    )
    parser.add_argument("--scorecam-repeat", type=int, default=1, help="repeats for Score-CAM, the slow one (default 1)")
    args = parser.parse_args()

    model, name = load_classifier(args.checkpoint)
    crops = face_crops(args.crops)
    methods = [Explainer.resolve_method(m) for m in args.methods.split(",") if m.strip()]
    explainers = {}
    for method in methods:
        kwargs = {}
        if method == "scorecam":
            kwargs["max_channels"] = args.scorecam_channels or None
        explainers[method] = Explainer(model, method=method, **kwargs)

    def predict() -> np.ndarray:
        with torch.no_grad():
            return torch.sigmoid(model(preprocess_crops(crops))).numpy()

    def predict_in_batches(size: int = 16) -> np.ndarray:
        # The explainers' batch size (16): separates the cost of explaining from that of batching.
        with torch.no_grad():
            return np.concatenate([torch.sigmoid(model(preprocess_crops(crops[i : i + size]))).numpy() for i in range(0, len(crops), size)])

    # Warm-up: first calls pay for imports, oneDNN kernel selection and allocator growth.
    predict()
    for explainer in explainers.values():
        explainer.explain(crops[:2])

    times: dict[str, list[float]] = {"predict": [], "predict (batches of 16)": [], **{m: [] for m in methods}}
    reference = predict()
    for repeat in range(args.repeat):
        start = time.perf_counter()
        predict()
        times["predict"].append(time.perf_counter() - start)
        start = time.perf_counter()
        predict_in_batches()
        times["predict (batches of 16)"].append(time.perf_counter() - start)
        for method, explainer in explainers.items():
            if method == "scorecam" and repeat >= args.scorecam_repeat:
                continue
            start = time.perf_counter()
            explanation = explainer.explanation(crops)
            times[method].append(time.perf_counter() - start)
            # Same scores as predicting: an explanation replaces the prediction, it does not add to it.
            assert np.allclose(explanation.scores, reference, atol=1e-4), method

    baseline = statistics.median(times["predict"])
    print(f"explaining {len(crops)} crops vs predicting them (model: {name})")
    print(f"machine: {describe_machine()}")
    print(f"{'method':<28} {'seconds':>9} {'ms/crop':>9} {'x predict':>10} {'runs':>5}")
    for method, values in times.items():
        if not values:
            continue
        seconds = statistics.median(values)
        label = method
        if method == "scorecam":
            label += f" ({args.scorecam_channels or 1280} channels)"
        print(f"{label:<28} {seconds:>9.3f} {1000 * seconds / len(crops):>9.1f} {seconds / baseline:>10.2f} {len(values):>5}")


if __name__ == "__main__":
    main()
