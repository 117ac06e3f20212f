"""``fakelens export --onnx``: write the classifier as an ONNX file for ONNX Runtime."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export the classifier to ONNX (uint8 224x224 crops in, P(fake) out)",
        description="Write the classifier, with its normalisation and sigmoid, as ONNX with a dynamic batch.",
    )
    parser.add_argument("--onnx", type=Path, required=True, metavar="FILE", help="output .onnx file")
    parser.add_argument("--checkpoint", type=Path, default=None, help="checkpoint (default: the bundled model)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from fakelens.backends import OnnxBackend, TorchBackend, export_onnx
    from fakelens.checkpoint import load_model
    from fakelens.detector import DEFAULT_MODEL

    model, info = load_model(args.checkpoint or DEFAULT_MODEL)
    path = export_onnx(model, args.onnx, opset=args.opset)
    # Check the export on random crops before telling the user it worked.
    crops = np.random.default_rng(0).integers(0, 256, (4, 224, 224, 3), dtype=np.uint8)
    gap = float(np.abs(OnnxBackend(path)(crops) - TorchBackend(model)(crops)).max())
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) for model {info['name']}; max |ONNX - PyTorch| = {gap:.2e} on 4 test crops")
    return 0
