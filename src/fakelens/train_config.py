"""Every training option, with its default and its help: the one definition `fakelens train` is built from.

Torch-free, so that ``fakelens --help`` stays fast. :class:`TrainConfig` is a dataclass whose fields carry
their help text and choices; :func:`add_arguments` turns them into argparse options (``--batch-size`` for
``batch_size``, ``--no-augment`` for a boolean that defaults to on), and :func:`load_config_file` reads a
YAML (or JSON) file of the same names for ``--config``. The resolved configuration of a run is saved in its
folder as ``config.yaml`` and inside every checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fakelens.constants import BACKBONE_PARAMS, BN_MODES, FAKES_MODES, SBI_COLOURS, SBI_MASKS, THRESHOLD_CRITERIA
from fakelens.errors import InvalidArgument

#: Fields that change how a run executes but not what it computes: a resumed run may change them.
RUNTIME_FIELDS = ("device", "workers", "threads", "progress", "stop_after", "out", "resume")
#: Fields the CLI spells its own way (``--init``/``--pretrained``, ``--no-progress``) or sets positionally.
_CLI_SPECIAL = ("init", "resume", "progress", "out", "manifest")


def option(default, help: str, choices=None, runtime: bool = False):  # noqa: A002 - argparse's word
    """A dataclass field whose metadata holds its CLI help text and choices."""
    return field(default=default, metadata={"help": help, "choices": choices, "runtime": runtime})


@dataclass
class TrainConfig:
    """Every training option, with its default. Stored in each checkpoint as a plain dict."""

    manifest: str = option("", "manifest CSV from `fakelens preprocess` (required unless --resume)")
    out: str = option("", "run folder for last.pt, best.pt, config.yaml, log.jsonl, loss.png, auc.png", runtime=True)
    init: str | None = option(None, '"imagenet", a torchvision mobilenet_v2 state dict, or a fakelens checkpoint; None = random')
    fakes: str = option("dataset", "fake samples: manifest fakes, self-blended images, or both", FAKES_MODES)
    epochs: int = option(10, "maximum epochs")
    batch_size: int = option(32, "batch size per process")
    lr: float = option(3e-4, "peak learning rate of AdamW for the head")
    #: Adam's first steps move every pretrained weight by ~lr, which wrecks ImageNet features at head-sized
    #: rates (a fine-tuning run at 1e-3 saw its train loss jump from 0.43 to 1.58).
    backbone_lr_mult: float = option(0.1, "backbone learning rate as a fraction of --lr")
    weight_decay: float = option(0.01, "AdamW weight decay (not on biases and norm layers)")
    warmup_epochs: float = option(1.0, "linear LR warm-up length in epochs")
    min_lr_ratio: float = option(0.01, "final LR of the cosine decay, fraction of the peak")
    grad_clip: float = option(1.0, "max gradient norm, 0 = off")
    freeze_backbone_epochs: int = option(1, "epochs training only the head")
    #: No backward pass runs through frozen blocks, which is most of a CPU step's cost (they work at 112-28 px).
    freeze_blocks: int = option(0, "first N of MobileNetV2's 19 feature blocks never train; no backward through them")
    backbone_params: str = option("all", "backbone parameters that train: all, or only batch norm weights and biases (BlenD)", BACKBONE_PARAMS)
    bn: str = option("auto", "backbone batch norm: auto = frozen when the batch is under 32", BN_MODES)
    patience: int = option(5, "early stopping after this many epochs without better val AUC, 0 = off")
    seed: int = option(0, "random seed")
    samples_per_epoch: int | None = option(None, "draws per epoch over all processes (default: number of training items)")
    max_train_images: int | None = option(None, "use at most this many training crops, a seeded subset (default all)")
    max_val_images: int | None = option(None, "use at most this many validation crops (default all)")
    sbi_share: float = option(0.5, "share of the FAKE half drawn from SBI with --fakes both")
    #: The 468 points are meshed once per crop into <manifest>.facemesh.npz (RUN/facemesh.npz where the
    #: manifest's folder is read-only); see docs/results/mask_compare.md for how the two masks differ.
    sbi_mask: str = option(
        "five",
        "SBI blend mask: five = hull extrapolated from MTCNN's 5 landmarks; dense = hulls of the 468-point face mesh (jaw, chin, brows)",
        SBI_MASKS,
    )
    sbi_colour: str = option(
        "paper",
        "SBI colour change of the source: paper = the reference code's subtle one; strong = the first release's (hue +-10 deg, S/V +-30 percent)",
        SBI_COLOURS,
    )
    sbi_pairs: bool = option(True, "with --fakes sbi, each drawn real crop and its own pseudo-fake share a batch (the SBI paper)")
    augment: bool = option(True, "data augmentation")
    #: A user's tight face-crop clip reaches the model as a face box mirror-filled to the crop's margin, and
    #: v3 ranked such crops worst of all perturbations (video AUC 0.69 against 0.82 clean).
    tight_crop_p: float = option(0.0, "share of training images shown as predict sees a tight face-crop clip (face box, mirror-filled, often soft)")
    #: Every deepfake a user checks is compressed video, while the face pool is photographs: each real crop and
    #: its pseudo-fake go through the same codec settings, so compression is no cue for either label.
    codec_p: float = option(0.0, "share of training images re-encoded as a video codec's intra frame (H.264/HEVC, CRF 18-40, 0.5-1x size)")
    #: Per-epoch weights (epoch-NN.pt, no optimiser) for choosing a checkpoint, or averaging several, outside training.
    keep_epochs: bool = option(False, "also save each epoch's weights as epoch-NN.pt")
    threshold_criterion: str = option("balanced_accuracy", "what the validation threshold maximises", THRESHOLD_CRITERIA)
    hidden: int = option(256, "width of the head's hidden layer")
    dropout: float = option(0.3, "head dropout")
    amp: bool = option(True, "mixed precision (CUDA only)")
    channels_last: bool = option(True, "channels_last memory format (CUDA only)")
    device: str = option("auto", "auto, cpu, cuda, cuda:1 ...", runtime=True)
    workers: int = option(2, "data loader processes per training process", runtime=True)
    #: On a machine whose cores are shared with other jobs, 1 can be several times faster: a multi-threaded
    #: step waits for its slowest thread (measured: 2.9 img/s with 2 threads on 2 busy cores, 3.5 with 1).
    threads: int | None = option(None, "torch threads per training process (default: one per core; 1 is faster on a busy machine)", runtime=True)
    progress: bool = option(True, "progress bars", runtime=True)
    stop_after: int | None = option(None, "end this invocation after N epochs; continue later with --resume", runtime=True)
    resume: bool = option(False, "continue the run in --out exactly where last.pt left it", runtime=True)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def field_help(name: str) -> str:
    """The help text of one :class:`TrainConfig` field."""
    return {f.name: f.metadata["help"] for f in dataclasses.fields(TrainConfig)}[name]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per :class:`TrainConfig` field (default None, so a caller can tell which were given)."""
    for f in dataclasses.fields(TrainConfig):
        if f.name in _CLI_SPECIAL:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        if kind == "bool":
            if f.default:
                parser.add_argument("--no-" + f.name.replace("_", "-"), dest=f.name, action="store_false", default=None,
                                    help=f"turn off: {f.metadata['help']} (default on)")  # fmt: skip
            else:
                parser.add_argument(flag, dest=f.name, action="store_true", default=None, help=f"{f.metadata['help']} (default off)")
            continue
        convert = {"int": int, "float": float, "int | None": int, "float | None": float}.get(kind, str)
        shown = "none" if f.default is None else f.default
        parser.add_argument(flag, dest=f.name, type=convert, choices=f.metadata["choices"], default=None,
                            help=f"{f.metadata['help']} (default {shown})")  # fmt: skip


def load_config_file(path: str | Path) -> dict:
    """The options in a YAML or JSON file (keys are TrainConfig field names, dashes allowed)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidArgument(f"{path}: cannot read --config ({exc.strerror or exc})") from None
    try:
        if path.suffix.lower() == ".json":
            values = json.loads(text)
        else:
            import yaml

            values = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - yaml and json raise their own families
        raise InvalidArgument(f"{path}: not a valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'} file ({exc})") from None
    values = {} if values is None else values
    if not isinstance(values, dict):
        raise InvalidArgument(f"{path}: --config must hold a mapping of option names to values")
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {str(k).replace("-", "_"): v for k, v in values.items()}
    unknown = sorted(set(values) - names)
    if unknown:
        raise InvalidArgument(f"{path}: unknown option(s) {', '.join(unknown)}")
    return values


def config_yaml(config: TrainConfig, notes: dict | None = None) -> str:
    """The resolved configuration as YAML text (what ``config.yaml`` in a run folder holds); ``notes`` (the
    manifest's hash, the process count, the initialisation) become comments, so the file stays a valid --config."""
    import yaml

    lines = ["# the resolved configuration of this run; `fakelens train --config config.yaml --out NEW_DIR` reruns it"]
    lines += [f"# {key}: {value}" for key, value in (notes or {}).items()]
    return "\n".join(lines) + "\n" + yaml.safe_dump(config.to_dict(), sort_keys=False)
