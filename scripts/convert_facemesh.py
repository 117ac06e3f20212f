"""Convert MediaPipe's 468-point face mesh (``face_landmark.tflite``) to the ONNX file fakelens ships.

The model comes from the ``mediapipe==0.10.14`` wheel (Apache-2.0), where it lies at
``mediapipe/modules/face_landmark/face_landmark.tflite``; later mediapipe releases no longer ship it. It is a
small residual CNN (CONV_2D, DEPTHWISE_CONV_2D, PRELU, ADD, MAX_POOL_2D, channel PAD, and DEQUANTIZE of its
float16 weights), so this script translates it op by op, without a general converter (``tflite2onnx`` 0.4.1
stops on its layout propagation). The ONNX graph keeps the weights in float16, cast to float32 inside the
graph (ONNX Runtime folds the casts when it loads the model), takes NHWC float input and has a dynamic batch:

* input ``image`` (N, 192, 192, 3) float32 RGB in [0, 1];
* output ``landmarks`` (N, 1404): 468 x (x, y, z) in input pixels (0-192), z relative depth;
* output ``face_logit`` (N, 1): the face-presence logit (sigmoid -> confidence that a face is in the crop).

It needs the ``tflite`` flatbuffer schema package and ``onnx``, neither in fakelens's lock; ``--check`` also
needs ``ai-edge-litert`` (to run the original) and ``onnxruntime``. In a throwaway environment:

    python3 -m venv /tmp/conv
    /tmp/conv/bin/pip install tflite==2.18.0 onnx numpy onnxruntime ai-edge-litert
    pip download mediapipe==0.10.14 --no-deps --python-version 3.11 \\
        --platform manylinux_2_17_x86_64 --only-binary=:all: -d /tmp/fm
    /tmp/conv/bin/python scripts/convert_facemesh.py \\
        /tmp/fm/mediapipe-0.10.14-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl \\
        src/fakelens/weights/face_landmark.onnx --check

The wheel's and the model's SHA-256 are checked against the ones recorded in
``src/fakelens/weights/FACE_LANDMARK_PROVENANCE.md``; the output is byte-for-byte reproducible.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import zipfile
from pathlib import Path

import numpy as np

WHEEL_SHA256 = "a807328339e7356fda0bb14df12fedbf1d33bdf81649c5f8666b0026b1cc30b4"
TFLITE_MEMBER = "mediapipe/modules/face_landmark/face_landmark.tflite"
TFLITE_SHA256 = "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814"
LICENCE_MEMBER = "mediapipe-0.10.14.dist-info/LICENSE"
OPSET = 13


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_tflite(wheel: Path) -> bytes:
    """The face-mesh model's bytes from the wheel (or from a .tflite given directly), hashes checked."""
    if wheel.suffix == ".tflite":
        data = wheel.read_bytes()
    else:
        if _sha256(wheel.read_bytes()) != WHEEL_SHA256:
            raise SystemExit(f"{wheel}: SHA-256 differs from mediapipe 0.10.14's cp311 manylinux wheel")
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(TFLITE_MEMBER)
    if _sha256(data) != TFLITE_SHA256:
        raise SystemExit("face_landmark.tflite: SHA-256 differs from the one this script was written for")
    return data


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME padding (before, after) along one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def convert(tflite_bytes: bytes):
    """Translate the tflite graph into an ONNX ModelProto (NCHW inside, NHWC image in)."""
    import onnx
    import tflite
    from onnx import TensorProto, helper, numpy_helper

    model = tflite.Model.GetRootAsModel(tflite_bytes, 0)
    graph = model.Subgraphs(0)
    op_names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}

    def tensor(index):
        return graph.Tensors(index)

    def shape(index) -> list[int]:
        return [int(v) for v in tensor(index).ShapeAsNumpy()]

    def buffer(index) -> np.ndarray:
        t = tensor(index)
        raw = model.Buffers(t.Buffer()).DataAsNumpy()
        dtype = {tflite.TensorType.FLOAT16: np.float16, tflite.TensorType.INT32: np.int32}[t.Type()]
        return np.frombuffer(raw.tobytes(), dtype=dtype).reshape(shape(index))

    consts: dict[int, np.ndarray] = {}  # tflite tensor index -> float16 weights (DEQUANTIZE outputs)
    nodes, inits = [], []
    names: dict[int, str] = {}

    def weight(name: str, array: np.ndarray) -> str:
        """A float16 initializer cast to float32 in the graph."""
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array.astype(np.float16)), name + "_f16"))
        nodes.append(helper.make_node("Cast", [name + "_f16"], [name], to=TensorProto.FLOAT))
        return name

    def options(op, cls):
        opts = cls()
        table = op.BuiltinOptions()
        opts.Init(table.Bytes, table.Pos)
        return opts

    def fused(opts, out: str) -> str:
        act = opts.FusedActivationFunction()
        if act == tflite.ActivationFunctionType.NONE:
            return out
        raise SystemExit(f"fused activation {act} not handled")

    image = graph.Inputs(0)
    nodes.append(helper.make_node("Transpose", ["image"], ["input_nchw"], perm=[0, 3, 1, 2]))
    names[image] = "input_nchw"
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = op_names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        ins = [int(v) for v in op.InputsAsNumpy()]
        out_index = int(op.OutputsAsNumpy()[0])
        out = tensor(out_index).Name().decode()
        if kind == "DEQUANTIZE":
            consts[out_index] = buffer(ins[0])
            continue
        x = names[ins[0]]
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            depthwise = kind == "DEPTHWISE_CONV_2D"
            opts = options(op, tflite.DepthwiseConv2DOptions if depthwise else tflite.Conv2DOptions)
            if opts.DilationHFactor() != 1 or opts.DilationWFactor() != 1:
                raise SystemExit("dilated convolutions not handled")
            kernel = consts[ins[1]]  # OHWI, or 1HWC for depthwise
            if depthwise:
                if opts.DepthMultiplier() != 1:
                    raise SystemExit("depth multiplier != 1 not handled")
                w = kernel.transpose(3, 0, 1, 2)  # C,1,H,W
            else:
                w = kernel.transpose(0, 3, 1, 2)  # O,I,H,W
            kh, kw = w.shape[2:]
            _, ih, iw, cin = shape(ins[0])
            strides = [opts.StrideH(), opts.StrideW()]
            if opts.Padding() == tflite.Padding.SAME:
                (pt, pb), (pl, pr) = _same_pads(ih, kh, strides[0]), _same_pads(iw, kw, strides[1])
            else:
                pt = pb = pl = pr = 0
            inputs = [x, weight(out + "/w", w)]
            if len(ins) > 2 and ins[2] >= 0:
                inputs.append(weight(out + "/b", consts[ins[2]].reshape(-1)))
            conv_out = out + "/conv"
            nodes.append(
                helper.make_node(
                    "Conv",
                    inputs,
                    [conv_out],
                    kernel_shape=[kh, kw],
                    strides=strides,
                    pads=[pt, pl, pb, pr],
                    group=cin if depthwise else 1,
                )
            )
            names[out_index] = fused(opts, conv_out)
        elif kind == "PRELU":
            alpha = consts[ins[1]].reshape(-1)
            slope = weight(out + "/alpha", alpha.reshape(-1, 1, 1))
            nodes.append(helper.make_node("PRelu", [x, slope], [out]))
            names[out_index] = out
        elif kind == "ADD":
            opts = options(op, tflite.AddOptions)
            nodes.append(helper.make_node("Add", [x, names[ins[1]]], [out + "/add"]))
            names[out_index] = fused(opts, out + "/add")
        elif kind == "MAX_POOL_2D":
            opts = options(op, tflite.Pool2DOptions)
            _, ih, iw, _ = shape(ins[0])
            kh, kw = opts.FilterHeight(), opts.FilterWidth()
            strides = [opts.StrideH(), opts.StrideW()]
            if opts.Padding() == tflite.Padding.SAME:
                (pt, pb), (pl, pr) = _same_pads(ih, kh, strides[0]), _same_pads(iw, kw, strides[1])
            else:
                pt = pb = pl = pr = 0
            nodes.append(helper.make_node("MaxPool", [x], [out + "/pool"], kernel_shape=[kh, kw], strides=strides, pads=[pt, pl, pb, pr]))
            names[out_index] = fused(opts, out + "/pool")
        elif kind == "PAD":
            pads_nhwc = buffer(ins[1])  # (4, 2): before/after for N, H, W, C
            order = [0, 3, 1, 2]
            pads = [int(pads_nhwc[a, 0]) for a in order] + [int(pads_nhwc[a, 1]) for a in order]
            inits.append(numpy_helper.from_array(np.array(pads, dtype=np.int64), out + "/pads"))
            nodes.append(helper.make_node("Pad", [x, out + "/pads"], [out], mode="constant"))
            names[out_index] = out
        else:
            raise SystemExit(f"operator {kind} not handled")

    landmarks_index, flag_index = (graph.Outputs(k) for k in range(2))
    nodes.append(helper.make_node("Flatten", [names[landmarks_index]], ["landmarks"], axis=1))
    nodes.append(helper.make_node("Flatten", [names[flag_index]], ["face_logit"], axis=1))
    onnx_graph = helper.make_graph(
        nodes,
        "mediapipe_face_landmark",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 192, 192, 3])],
        [
            helper.make_tensor_value_info("landmarks", TensorProto.FLOAT, ["N", 1404]),
            helper.make_tensor_value_info("face_logit", TensorProto.FLOAT, ["N", 1]),
        ],
        inits,
    )
    onnx_model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="fakelens/scripts/convert_facemesh.py")
    onnx_model.ir_version = 8
    onnx_model.doc_string = (
        "MediaPipe face mesh (face_landmark.tflite from mediapipe 0.10.14, Apache-2.0), converted op by op. "
        "image: (N, 192, 192, 3) RGB in [0, 1]; landmarks: (N, 468*3) in input pixels; face_logit: (N, 1)."
    )
    onnx.checker.check_model(onnx_model)
    return onnx_model


def check(tflite_bytes: bytes, onnx_path: Path) -> float:
    """Largest difference (landmark pixels, face logit) between LiteRT on the original and ONNX Runtime on the conversion."""
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    rng = np.random.default_rng(0)
    batch = rng.random((2, 192, 192, 3), dtype=np.float32)
    interpreter = Interpreter(model_content=tflite_bytes)
    interpreter.allocate_tensors()
    ref = []
    for item in batch:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], item[None])
        interpreter.invoke()
        outs = {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}
        ref.append(np.concatenate([outs["conv2d_21"].reshape(-1), outs["conv2d_31"].reshape(-1)]))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    got = np.concatenate(session.run(["landmarks", "face_logit"], {"image": batch}), axis=1)
    return float(np.abs(np.stack(ref) - got).max())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="mediapipe-0.10.14 cp311 manylinux wheel (or the .tflite itself)")
    parser.add_argument("out", type=Path, help="ONNX file to write (src/fakelens/weights/face_landmark.onnx)")
    parser.add_argument("--check", action="store_true", help="compare with the .tflite run by ai-edge-litert")
    args = parser.parse_args(argv)
    data = read_tflite(args.wheel)
    model = convert(data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = model.SerializeToString()
    args.out.write_bytes(payload)
    print(f"wrote {args.out} ({len(payload)} bytes, sha256 {_sha256(payload)})")
    if args.check:
        diff = check(data, args.out)
        print(f"max |LiteRT - ONNX Runtime| over 2 random inputs (landmarks in px, logit): {diff:.5f}")
        if diff > 0.05:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
