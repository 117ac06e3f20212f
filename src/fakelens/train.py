"""Training of the MobileNetV2 deepfake classifier on a manifest of face crops.

Recipe: BCEWithLogits on one logit (1 = FAKE), AdamW (no weight decay on biases and norm layers; the
backbone at a tenth of the head's learning rate by default), linear
LR warm-up then cosine decay per step, gradient-norm clipping, class-balanced sampling, deepfake-relevant
augmentation (:class:`fakelens.data.Augmenter`), optionally Self-Blended Images (:mod:`fakelens.sbi`) as
extra or only fakes, a frozen backbone for the first epochs, AMP and channels_last on CUDA, and
DistributedDataParallel under ``torchrun`` (gloo on CPU, nccl on GPU; rank 0 writes every file).

Batch norm: the ImageNet initialisation's statistics are only kept meaningful by large batches
(see ../shared/weights/PROVENANCE.md). With ``bn="auto"`` (default), backbone batch norm layers stay in
eval mode (running statistics frozen, affine parameters still trained) while the backbone is frozen and
whenever the per-process batch is below 32; otherwise they train normally.

Every epoch writes, in the run folder: ``last.pt`` (model, optimiser, scheduler, RNG states, history:
``--resume`` continues exactly where an interrupted run stopped, giving the same weights as an
uninterrupted run), ``best.pt`` on a new best validation AUC (with the decision threshold chosen on those
validation scores, see :func:`fakelens.metrics.best_threshold`), ``log.jsonl`` (one JSON object per
epoch), ``loss.png`` and ``auc.png``. Training stops early after ``patience`` epochs without a better
validation AUC.

Validation set: the manifest's ``val`` split, REAL vs its FAKE crops. With ``fakes="sbi"`` (or when the
val split has no FAKE crops) the FAKE side is instead a fixed self-blended copy of every val REAL crop, so
that SBI-only training selects its model without ever seeing a real manipulation.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fakelens import atomic
from fakelens.checkpoint import load_checkpoint, save_checkpoint, sha256_file
from fakelens.data import (
    PURPOSE_EVAL_SBI,
    PURPOSE_TRAIN,
    Augmenter,
    BalancedSampler,
    CropDataset,
    PairedSampler,
    ManifestError,
    ManifestRow,
    atomic_write_text,
    collate,
    kind_weights,
    normalize_batch,
    read_manifest,
    worker_init,
)
from fakelens.errors import FakelensError
from fakelens.evaluate import _autocast, resolve_device, score_dataset, sigmoid
from fakelens.metrics import best_threshold, binary_metrics
from fakelens.model import DeepfakeClassifier, load_backbone_weights

log = logging.getLogger(__name__)

FAKES_MODES = ("dataset", "sbi", "both")
BN_MODES = ("auto", "train", "frozen")
#: Which backbone parameters train: all of them, or only the batch norm affine parameters (the head always
#: trains). "norm" is BlenD's recipe (Yermakov et al. 2026): a frozen pretrained backbone whose normalisation
#: layers adapt, about 34k backbone parameters of MobileNetV2's 2.2M.
BACKBONE_PARAMS = ("all", "norm")
#: Per-process batch below which batch norm statistics are kept frozen (bn="auto").
BN_MIN_BATCH = 32
#: Fields that change how a run executes but not what it computes: a resumed run may change them.
RUNTIME_FIELDS = ("device", "workers", "threads", "progress", "stop_after", "out", "resume")


class TrainingError(FakelensError):
    """Training cannot start or continue (bad options, unusable data, run folder conflicts)."""


@dataclass
class TrainConfig:
    """Every training option, with its default. Stored in each checkpoint as a plain dict."""

    manifest: str = ""  #: manifest CSV (required)
    out: str = ""  #: run folder (required)
    init: str | None = None  #: "imagenet", a torchvision mobilenet_v2 state dict, or a fakelens checkpoint; None = random
    fakes: str = "dataset"  #: "dataset" (manifest fakes), "sbi" (self-blended only) or "both"
    epochs: int = 10
    batch_size: int = 32  #: per process
    lr: float = 3e-4  #: peak learning rate of the head
    #: backbone LR = lr * this: Adam's first steps move every pretrained weight by ~lr, which wrecks ImageNet
    #: features at head-sized rates (a fine-tuning run at 1e-3 saw its train loss jump from 0.43 to 1.58).
    backbone_lr_mult: float = 0.1
    weight_decay: float = 0.01
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01  #: final LR as a fraction of the peak
    grad_clip: float = 1.0  #: max gradient norm (0 = off)
    freeze_backbone_epochs: int = 1  #: train only the head for this many first epochs
    #: the first this-many blocks of ``features`` never train (ImageNet weights, batch norm in eval mode); no
    #: backward pass runs through them, which is most of a CPU step's cost (they work at 112-28 px)
    freeze_blocks: int = 0
    backbone_params: str = "all"  #: "all" or "norm" (only batch norm weights and biases train; see BACKBONE_PARAMS)
    bn: str = "auto"  #: "auto", "train" or "frozen" (see module docstring)
    patience: int = 5  #: early stopping after this many epochs without better val AUC (0 = off)
    seed: int = 0
    samples_per_epoch: int | None = None  #: draws per epoch over all processes (default: number of training items)
    max_train_images: int | None = None  #: cap on training crops (a seeded subset; default all)
    max_val_images: int | None = None  #: cap on validation crops (default all)
    sbi_share: float = 0.5  #: share of the FAKE half drawn from SBI when fakes="both"
    #: with fakes="sbi": every batch holds each drawn real crop and its own pseudo-fake (the SBI paper)
    sbi_pairs: bool = True
    augment: bool = True
    threshold_criterion: str = "balanced_accuracy"
    hidden: int = 256  #: classifier head width
    dropout: float = 0.3
    amp: bool = True  #: mixed precision (CUDA only)
    channels_last: bool = True  #: channels_last memory format (CUDA only)
    device: str = "auto"
    workers: int = 2  #: DataLoader worker processes per process
    #: torch threads of each training process (None = torch's default, one per core). On a machine whose cores
    #: are shared with other jobs, 1 can be several times faster: a multi-threaded step waits for its slowest
    #: thread, and a thread that shares its core with another process is slow (measured: 2.9 img/s with 2
    #: threads on 2 busy cores).
    threads: int | None = None
    progress: bool = True  #: tqdm bars
    stop_after: int | None = None  #: end this invocation after this many epochs (resumable), e.g. for time-limited jobs
    resume: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


@dataclass
class TrainResult:
    """What a :func:`train` call did."""

    out: str
    epochs_completed: int
    best_epoch: int | None
    best_val_auc: float | None
    threshold: float
    stopped_early: bool
    finished: bool
    history: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- distributed helpers


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _init_distributed(device_request: str) -> tuple[DistInfo, torch.device]:
    import torch.distributed as dist

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    info = DistInfo(int(os.environ.get("RANK", "0")), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    device = resolve_device(device_request)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", info.local_rank if info.enabled else torch.cuda.current_device())
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if info.enabled and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return info, device


def _barrier(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist

        dist.barrier()


def _all_gather(info: DistInfo, obj):
    if not info.enabled:
        return [obj]
    import torch.distributed as dist

    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def _broadcast(info: DistInfo, obj):
    if not info.enabled:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


# --------------------------------------------------------------------------- data selection


def build_train_items(rows: list[ManifestRow], fakes: str) -> list[tuple[int, str]]:
    """Dataset items for training: REAL crops, plus manifest FAKE crops and/or an SBI copy of each REAL crop."""
    items = []
    for i, row in enumerate(rows):
        if row.label == "real":
            items.append((i, "real"))
            if fakes in ("sbi", "both"):
                items.append((i, "sbi"))
        elif fakes in ("dataset", "both"):
            items.append((i, "fake"))
    return items


def build_val_items(rows: list[ManifestRow], fakes: str) -> tuple[list[tuple[int, str]], str]:
    """Validation items and what the FAKE side is (``"dataset"`` or ``"sbi"``; see module docstring)."""
    reals = [(i, "real") for i, r in enumerate(rows) if r.label == "real"]
    manifest_fakes = [(i, "fake") for i, r in enumerate(rows) if r.label == "fake"]
    if fakes == "sbi" or not manifest_fakes:
        return reals + [(i, "sbi") for i, _ in reals], "sbi"
    return reals + manifest_fakes, "dataset"


def _subset(rows: list[ManifestRow], limit: int | None, seed: int) -> list[ManifestRow]:
    if not limit or limit >= len(rows):
        return rows
    order = np.random.default_rng(seed).permutation(len(rows))[:limit]
    return [rows[i] for i in sorted(order)]


def _check_leakage(train_rows: list[ManifestRow], val_rows: list[ManifestRow]) -> None:
    shared = {r.group for r in train_rows} & {r.group for r in val_rows}
    if shared:
        example = ", ".join(sorted(shared)[:3])
        log.warning("%d leakage group(s) appear in both train and val (e.g. %s): validation is optimistic", len(shared), example)


# --------------------------------------------------------------------------- model set-up


def _init_model(model: DeepfakeClassifier, init: str | None) -> str:
    """Load ``init`` into ``model``; returns a description for the log."""
    if init is None:
        log.warning("no --init/--pretrained: the backbone starts from random weights (expect poor results)")
        return "random"
    if str(init) == "imagenet":
        try:
            load_backbone_weights(model, "imagenet")
        except Exception as exc:  # noqa: BLE001 - network errors come in many types
            raise TrainingError(
                f"could not fetch torchvision's ImageNet weights ({exc}); pass --init PATH to a local mobilenet_v2 state dict"
            ) from exc
        return "torchvision IMAGENET1K_V2"
    path = Path(init)
    if not path.is_file():
        raise TrainingError(f"{path}: --init file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise TrainingError(f"{path}: cannot read --init weights ({exc})") from exc
    if isinstance(payload, dict) and payload.get("format") == "fakelens-checkpoint":
        payload = load_checkpoint(path)
        try:
            model.load_state_dict(payload["model_state"], strict=True)
        except RuntimeError as exc:
            raise TrainingError(f"{path}: checkpoint does not fit this model (--hidden?): {exc}") from exc
        return f"fakelens checkpoint {path}"
    try:
        load_backbone_weights(model, path)
    except (RuntimeError, KeyError, AttributeError) as exc:
        raise TrainingError(f"{path}: not a torchvision mobilenet_v2 state dict ({exc})") from exc
    return f"backbone {path}"


def _param_groups(model: DeepfakeClassifier, lr: float, weight_decay: float, backbone_lr_mult: float) -> list[dict]:
    """Head first (its LR is the one logged), then the backbone at ``lr * backbone_lr_mult``; biases and norm
    scales are not decayed."""
    groups = []
    for params, group_lr in ((list(model.head.parameters()), lr), (list(model.features.parameters()), lr * backbone_lr_mult)):
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        groups.append({"params": decay, "weight_decay": weight_decay, "lr": group_lr})
        groups.append({"params": no_decay, "weight_decay": 0.0, "lr": group_lr})
    return groups


def lr_factor(step: int, total_steps: int, warmup_steps: int, min_ratio: float) -> float:
    """Linear warm-up to 1 over ``warmup_steps``, then cosine decay to ``min_ratio`` at ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    progress = min(max(progress, 0.0), 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _set_phase(
    model: DeepfakeClassifier, frozen_backbone: bool, freeze_bn: bool, freeze_blocks: int = 0, backbone_params: str = "all"
) -> None:
    """Train mode with the backbone (un)frozen and its batch norm statistics frozen or not; the first
    ``freeze_blocks`` blocks stay frozen throughout; with ``backbone_params="norm"`` only the backbone's batch
    norm affine parameters train."""
    model.train()
    for module in model.features.modules():
        is_norm = isinstance(module, nn.modules.batchnorm._BatchNorm)
        for param in module.parameters(recurse=False):
            param.requires_grad_(not frozen_backbone and (backbone_params == "all" or is_norm))
    if frozen_backbone or freeze_bn:
        for module in model.features.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
    for block in list(model.features)[:freeze_blocks]:
        block.eval()
        for param in block.parameters():
            param.requires_grad_(False)


# --------------------------------------------------------------------------- RNG state


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state["numpy"] = {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)}
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
    if "numpy" in state:
        n = state["numpy"]
        np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))


# --------------------------------------------------------------------------- outputs


def write_log(out: Path, history: list[dict]) -> None:
    """``log.jsonl``: rewritten whole (atomically) from the history kept in the checkpoint."""
    atomic_write_text(out / "log.jsonl", "".join(json.dumps(entry) + "\n" for entry in history))


def plot_history(out: Path, history: list[dict]) -> None:
    """``loss.png`` (train and val loss) and ``auc.png`` (val AUC and AP) per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        return
    epochs = [h["epoch"] for h in history]

    def series(key):
        return [np.nan if h.get(key) is None else h[key] for h in history]

    for name, keys, ylabel in (
        ("loss", ("train_loss", "val_loss"), "BCE loss"),
        ("auc", ("val_auc", "val_ap"), "validation AUC / AP"),
    ):
        fig, ax = plt.subplots(figsize=(5, 3.4))
        for key in keys:
            ax.plot(epochs, series(key), marker="o", label=key)
        ax.set(xlabel="epoch", ylabel=ylabel, title=f"{out.name}: {name}")
        if name == "auc":
            ax.set_ylim(0, 1.02)
        ax.legend()
        ax.grid(alpha=0.3)
        with atomic.atomic_path(out / f"{name}.png") as tmp:
            fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
        plt.close(fig)


# --------------------------------------------------------------------------- training


def _validate(
    model: DeepfakeClassifier,
    dataset: CropDataset | None,
    cfg: TrainConfig,
    info: DistInfo,
    device: torch.device,
) -> dict:
    """Validation metrics (same on every rank); the threshold is chosen on these scores."""
    if dataset is None or len(dataset) == 0:
        return {}
    shard = list(range(info.rank, len(dataset), info.world_size))
    logits = score_dataset(
        model, dataset, shard, batch_size=max(cfg.batch_size, 32), device=device, workers=cfg.workers,
        amp=cfg.amp, channels_last=cfg.channels_last and device.type == "cuda", progress=cfg.progress and info.is_main,
        desc="validating",
    )  # fmt: skip
    parts = _all_gather(info, (shard, logits.tolist()))
    all_logits = np.empty(len(dataset), dtype=np.float64)
    for indices, values in parts:
        all_logits[indices] = values
    targets = dataset.targets
    loss = float(nn.functional.binary_cross_entropy_with_logits(torch.from_numpy(all_logits), torch.from_numpy(targets).double()))
    scores = sigmoid(all_logits)
    threshold = best_threshold(targets, scores, cfg.threshold_criterion)
    metrics = binary_metrics(targets, scores, threshold)
    return {"loss": loss, "threshold": threshold, **metrics.to_dict()}


def train(config: TrainConfig) -> TrainResult:
    """Train (or, with ``config.resume``, continue) a run; see the module docstring for what it writes."""
    cfg = config
    if not cfg.manifest or not cfg.out:
        raise TrainingError("both a manifest and an output folder are needed")
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    info, device = _init_distributed(cfg.device)
    try:
        return _train(cfg, info, device)
    finally:
        if info.enabled:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def _train(cfg: TrainConfig, info: DistInfo, device: torch.device) -> TrainResult:
    from tqdm import tqdm

    out = Path(cfg.out)
    last_path, best_path = out / "last.pt", out / "best.pt"
    resume_payload = None
    if cfg.resume:
        if not last_path.is_file():
            raise TrainingError(f"{out}: nothing to resume (no last.pt); start without --resume")
        resume_payload = load_checkpoint(last_path)
        saved = TrainConfig.from_dict(resume_payload["config"])
        runtime = {k: getattr(cfg, k) for k in RUNTIME_FIELDS}
        cfg = dataclasses.replace(saved, **runtime)
        if resume_payload["extra"].get("finished"):
            log.info("%s: run already finished at epoch %d; nothing to resume", out, resume_payload["epoch"])
            return _result_from_payload(out, resume_payload)
        if int(resume_payload["extra"].get("world_size", 1)) != info.world_size:
            log.warning("resuming with %d processes instead of %d: the result will not be identical", info.world_size, resume_payload["extra"].get("world_size", 1))
    elif last_path.exists():
        raise TrainingError(f"{out} already holds a run (last.pt); use --resume to continue it or choose another --out")
    _validate_config(cfg)

    manifest_hash = sha256_file(cfg.manifest) if Path(cfg.manifest).is_file() else None
    if resume_payload is not None and manifest_hash != resume_payload["config"].get("manifest_sha256"):
        log.warning("the manifest changed since this run started: the resumed run will not be identical")
    train_rows = _subset(read_manifest(cfg.manifest, split="train"), cfg.max_train_images, cfg.seed)
    try:
        val_rows = _subset(read_manifest(cfg.manifest, split="val"), cfg.max_val_images, cfg.seed + 1)
    except ManifestError:
        val_rows = []
    _check_leakage(train_rows, val_rows)
    train_items = build_train_items(train_rows, cfg.fakes)
    kinds = [k for _, k in train_items]
    if "real" not in kinds or not ({"fake", "sbi"} & set(kinds)):
        raise TrainingError(
            f"the train split needs REAL crops and FAKE crops (fakes={cfg.fakes!r}; found "
            f"{kinds.count('real')} real, {kinds.count('fake')} fake, {kinds.count('sbi')} sbi)"
        )
    if val_rows:
        val_items, val_fakes = build_val_items(val_rows, cfg.fakes)
        val_set = CropDataset(val_rows, val_items, seed=cfg.seed, purpose=PURPOSE_EVAL_SBI) if val_items else None
    else:
        val_set, val_fakes = None, None
        log.warning("no val split: no model selection, no early stopping, best.pt = last epoch with threshold 0.5")

    # --- model, optimiser, schedule (seeded identically on every rank; DDP also broadcasts rank 0's weights)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % (2**32))
    model = DeepfakeClassifier(hidden=cfg.hidden, dropout=cfg.dropout)
    init_desc = _init_model(model, cfg.init) if resume_payload is None else "resumed"
    model.to(device)
    use_channels_last = cfg.channels_last and device.type == "cuda"
    if use_channels_last:
        model.to(memory_format=torch.channels_last)

    paired = cfg.fakes == "sbi" and cfg.sbi_pairs
    train_set = CropDataset(
        train_rows, train_items, augment=Augmenter() if cfg.augment else None, seed=cfg.seed, purpose=PURPOSE_TRAIN, paired=paired
    )
    if paired:
        sampler = PairedSampler(train_items, cfg.samples_per_epoch or len(train_items), seed=cfg.seed, rank=info.rank, world_size=info.world_size)
    else:
        sampler = BalancedSampler(
            kind_weights(kinds, cfg.sbi_share), cfg.samples_per_epoch or len(train_items), seed=cfg.seed, rank=info.rank, world_size=info.world_size
        )
    steps_per_epoch = math.ceil(len(sampler) / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    warmup_steps = int(round(cfg.warmup_epochs * steps_per_epoch))
    optimizer = torch.optim.AdamW(_param_groups(model, cfg.lr, cfg.weight_decay, cfg.backbone_lr_mult), lr=cfg.lr)

    def schedule(step: int) -> float:
        return lr_factor(step, total_steps, warmup_steps, cfg.min_lr_ratio)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    amp_fp16 = cfg.amp and device.type == "cuda" and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler("cuda", enabled=amp_fp16)
    loss_fn = nn.BCEWithLogitsLoss()

    start_epoch, history = 0, []
    best_auc, best_epoch, best_threshold_value, since_best = None, None, 0.5, 0
    if resume_payload is not None:
        model.load_state_dict(resume_payload["model_state"])
        optimizer.load_state_dict(resume_payload["optimizer_state"])
        scheduler.load_state_dict(resume_payload["scheduler_state"])
        extra = resume_payload["extra"]
        if extra.get("scaler"):
            scaler.load_state_dict(extra["scaler"])
        start_epoch = int(resume_payload["epoch"])
        history = list(extra.get("history", []))
        best_auc, best_epoch = extra.get("best_auc"), extra.get("best_epoch")
        best_threshold_value = float(extra.get("best_threshold", 0.5))
        since_best = int(extra.get("since_best", 0))
        rng_states = extra.get("rng", [])
        if info.rank < len(rng_states):
            _set_rng_state(rng_states[info.rank], device)
        log.info("resuming %s after epoch %d", out, start_epoch)
    else:
        # Dropout masks and other global randomness differ per rank, the model initialisation did not.
        torch.manual_seed(cfg.seed + 7919 * info.rank)

    stored_config = {**cfg.to_dict(), "manifest_sha256": manifest_hash, "world_size": info.world_size, "init_description": init_desc}
    if resume_payload is not None:
        stored_config = {**resume_payload["config"], **{k: getattr(cfg, k) for k in RUNTIME_FIELDS}}
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        n_val = 0 if val_set is None else len(val_set)
        log.info(
            "training on %d crops (%s), validating on %d items (fakes from %s); %d process(es) on %s, init: %s",
            len(train_rows), ", ".join(f"{k} {kinds.count(k)}" for k in ("real", "fake", "sbi") if kinds.count(k)),
            n_val, val_fakes, info.world_size, device, init_desc,
        )  # fmt: skip

    freeze_bn = cfg.bn == "frozen" or (cfg.bn == "auto" and cfg.batch_size < BN_MIN_BATCH)
    ddp_model, ddp_phase = None, None
    stopped_early, epochs_this_run = False, 0
    loader_generator = torch.Generator()

    for epoch in range(start_epoch, cfg.epochs):
        frozen = epoch < cfg.freeze_backbone_epochs
        _set_phase(model, frozen, freeze_bn, cfg.freeze_blocks, cfg.backbone_params)
        if info.enabled and ddp_phase != frozen:
            # DDP registers the parameters that need gradients when it is built: rebuild when that set changes.
            from torch.nn.parallel import DistributedDataParallel

            ddp_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
            ddp_phase = frozen
        forward = ddp_model if info.enabled else model
        sampler.set_epoch(epoch)
        train_set.set_epoch(epoch)
        loader_generator.manual_seed(cfg.seed + epoch)
        loader = torch.utils.data.DataLoader(
            train_set, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.workers, collate_fn=collate,
            worker_init_fn=worker_init if cfg.workers else None, pin_memory=device.type == "cuda",
            generator=loader_generator, drop_last=False,
        )  # fmt: skip
        trainable = [p for p in model.parameters() if p.requires_grad]
        loss_sum, correct, seen = 0.0, 0, 0
        epoch_start = time.perf_counter()
        bar = tqdm(total=len(sampler), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="img", disable=not (cfg.progress and info.is_main), leave=False)
        for images, targets, _ in loader:
            images = images.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            x = normalize_batch(images, use_channels_last)
            with _autocast(device, cfg.amp):
                logits = forward(x)
            loss = loss_fn(logits.float(), targets)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            n = len(targets)
            loss_sum += float(loss.detach()) * n
            correct += int(((logits.detach().float() > 0).float() == targets).sum())
            seen += n
            bar.update(n)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", img_s=f"{seen / max(time.perf_counter() - epoch_start, 1e-9):.1f}")
        bar.close()
        train_seconds = time.perf_counter() - epoch_start
        totals = np.sum(_all_gather(info, [loss_sum, correct, seen]), axis=0) if info.enabled else [loss_sum, correct, seen]
        train_loss = float(totals[0] / max(totals[2], 1))
        train_acc = float(totals[1] / max(totals[2], 1))

        val = _validate(model, val_set, cfg, info, device)
        val_auc = val.get("auc")
        entry = {
            "epoch": epoch + 1,
            "lr": float(optimizer.param_groups[0]["lr"]),
            "frozen_backbone": frozen,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "train_images": int(totals[2]),
            "train_images_per_s": float(totals[2] / max(train_seconds, 1e-9)),
            "val_loss": val.get("loss"),
            "val_auc": val_auc,
            "val_ap": val.get("ap"),
            "val_eer": val.get("eer"),
            "val_threshold": val.get("threshold"),
            "val_balanced_accuracy": (val.get("at_threshold") or {}).get("balanced_accuracy"),
            "seconds": time.perf_counter() - epoch_start,
        }
        history.append(entry)
        if val_auc is None:
            # No usable validation AUC (no val split, or one class only): the latest epoch stands as best.
            improved = best_auc is None
        else:
            improved = best_auc is None or val_auc > best_auc
        if improved:
            best_auc, best_epoch, since_best = val_auc, epoch + 1, 0
            best_threshold_value = float(val.get("threshold", 0.5)) if val else 0.5
        else:
            since_best += 1
        stopped_early = bool(cfg.patience and val_auc is not None and since_best >= cfg.patience)
        finished = stopped_early or epoch + 1 >= cfg.epochs

        rng = _all_gather(info, _rng_state(device))
        if info.is_main:
            best_metrics = {"val": val, "epoch": epoch + 1, "val_fakes": val_fakes}
            if improved:
                save_checkpoint(best_path, model, epoch=epoch + 1, config=stored_config, metrics=best_metrics, threshold=best_threshold_value, name=out.name)
            extra = {
                "history": history,
                "best_auc": best_auc,
                "best_epoch": best_epoch,
                "best_threshold": best_threshold_value,
                "since_best": since_best,
                "rng": rng,
                "scaler": scaler.state_dict() if scaler.is_enabled() else {},
                "world_size": info.world_size,
                "finished": finished,
                "stopped_early": stopped_early,
            }
            save_checkpoint(
                last_path, model, optimizer, scheduler, epoch=epoch + 1, config=stored_config,
                metrics={"val": val, "epoch": epoch + 1, "val_fakes": val_fakes}, threshold=best_threshold_value,
                extra=extra, name=out.name,
            )  # fmt: skip
            write_log(out, history)
            plot_history(out, history)
            log.info(
                "epoch %d/%d: train loss %.4f acc %.3f (%.1f img/s) | val loss %s AUC %s EER %s%s",
                epoch + 1, cfg.epochs, train_loss, train_acc, entry["train_images_per_s"],
                _fmt(entry["val_loss"]), _fmt(val_auc), _fmt(entry["val_eer"]), "  *best*" if improved and val_set is not None else "",
            )  # fmt: skip
        _barrier(info)
        epochs_this_run += 1
        if stopped_early:
            if info.is_main:
                log.info("early stopping: no better val AUC for %d epochs (best %s at epoch %s)", since_best, _fmt(best_auc), best_epoch)
            break
        if cfg.stop_after and epochs_this_run >= cfg.stop_after and not finished:
            if info.is_main:
                log.info("stopping after %d epoch(s) as asked; continue with --resume", epochs_this_run)
            break

    completed = history[-1]["epoch"] if history else start_epoch
    return TrainResult(
        out=str(out),
        epochs_completed=completed,
        best_epoch=best_epoch,
        best_val_auc=best_auc,
        threshold=best_threshold_value,
        stopped_early=stopped_early,
        finished=stopped_early or completed >= cfg.epochs,
        history=history,
    )


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _result_from_payload(out: Path, payload: dict) -> TrainResult:
    extra = payload["extra"]
    return TrainResult(
        out=str(out),
        epochs_completed=int(payload["epoch"]),
        best_epoch=extra.get("best_epoch"),
        best_val_auc=extra.get("best_auc"),
        threshold=float(extra.get("best_threshold", 0.5)),
        stopped_early=bool(extra.get("stopped_early")),
        finished=True,
        history=list(extra.get("history", [])),
    )


def _validate_config(cfg: TrainConfig) -> None:
    problems = []
    if cfg.fakes not in FAKES_MODES:
        problems.append(f"fakes must be one of {FAKES_MODES}")
    if cfg.backbone_params not in BACKBONE_PARAMS:
        problems.append(f"backbone-params must be one of {BACKBONE_PARAMS}")
    if cfg.bn not in BN_MODES:
        problems.append(f"bn must be one of {BN_MODES}")
    if cfg.epochs < 1:
        problems.append("epochs must be >= 1")
    if cfg.batch_size < 1:
        problems.append("batch size must be >= 1")
    if cfg.fakes == "sbi" and cfg.sbi_pairs and cfg.batch_size % 2:
        problems.append("batch size must be even with SBI pairs (each real crop and its pseudo-fake share a batch)")
    if not cfg.lr > 0:
        problems.append("lr must be > 0")
    if not 0 <= cfg.freeze_blocks <= 19:
        problems.append("freeze-blocks must be in 0-19 (MobileNetV2 has 19 feature blocks)")
    if cfg.freeze_backbone_epochs < 0 or cfg.patience < 0:
        problems.append("freeze-backbone-epochs and patience must be >= 0")
    if not 0.0 <= cfg.sbi_share <= 1.0:
        problems.append("sbi-share must be in [0, 1]")
    if cfg.threshold_criterion not in ("balanced_accuracy", "f1"):
        problems.append("threshold criterion must be balanced_accuracy or f1")
    if problems:
        raise TrainingError("; ".join(problems))
