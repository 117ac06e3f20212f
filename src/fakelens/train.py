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

Elsewhere: the options are :mod:`fakelens.train_config`, the collectives and RNG states
:mod:`fakelens.distributed`, the item lists and the log and plots :mod:`fakelens.training_data`.
What trains and how fast (initial weights, parameter groups, the LR schedule, the frozen layers) is
:mod:`fakelens.trainable`. What is left here is one run, from options to ``last.pt`` (set-up, epochs,
validation, saving and resuming), each step a function of the one ``_Run`` it builds, read top to bottom.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fakelens.checkpoint import load_checkpoint, save_checkpoint, sha256_file
from fakelens.constants import BACKBONE_PARAMS, BN_MODES, FAKES_MODES, KINDS, THRESHOLD_CRITERIA, sigmoid
from fakelens.data import (
    PURPOSE_EVAL_SBI,
    PURPOSE_TRAIN,
    Augmenter,
    BalancedSampler,
    CropDataset,
    ManifestError,
    ManifestRow,
    PairedSampler,
    atomic_write_text,
    collate,
    kind_weights,
    normalize_batch,
    read_manifest,
    worker_init,
)
from fakelens.distributed import DistInfo, all_gather, barrier, init_distributed, rng_state, set_rng_state
from fakelens.errors import TrainingError
from fakelens.evaluate import _autocast, score_dataset
from fakelens.metrics import best_threshold, binary_metrics
from fakelens.model import DeepfakeClassifier
from fakelens.sbi import SBIConfig
from fakelens.train_config import RUNTIME_FIELDS, TrainConfig, config_yaml
from fakelens.trainable import init_model, lr_factor, param_groups, set_phase
from fakelens.training_data import (
    build_train_items,
    build_val_items,
    check_leakage,
    dense_points,
    plot_history,
    subset_rows,
    write_log,
)

log = logging.getLogger(__name__)

#: Per-process batch below which batch norm statistics are kept frozen (bn="auto").
BN_MIN_BATCH = 32


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
    parts = all_gather(info, (shard, logits.tolist()))
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
    info, device = init_distributed(cfg.device)
    try:
        return _train(cfg, info, device)
    finally:
        if info.enabled:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


@dataclass
class _Standing:
    """Where a run stands between epochs: what ``last.pt`` restores besides the weights."""

    start_epoch: int = 0
    history: list[dict] = field(default_factory=list)
    best_auc: float | None = None
    best_epoch: int | None = None
    best_threshold: float = 0.5
    since_best: int = 0


@dataclass
class _Run:
    """Everything one training invocation works with, built once by :func:`_build_run`."""

    cfg: TrainConfig
    info: DistInfo
    device: torch.device
    out: Path
    model: DeepfakeClassifier
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    train_set: CropDataset
    sampler: BalancedSampler | PairedSampler
    val_set: CropDataset | None
    val_fakes: str | None
    stored_config: dict
    channels_last: bool
    freeze_bn: bool
    ddp_model: nn.Module | None = None
    ddp_frozen: bool | None = None


def _train(cfg: TrainConfig, info: DistInfo, device: torch.device) -> TrainResult:
    """Restore (or start), then train one epoch at a time, validating and saving after each."""
    cfg, payload = _resolve_config(cfg, info)
    if payload is not None and payload["extra"].get("finished"):
        log.info("%s: run already finished at epoch %d; nothing to resume", cfg.out, payload["epoch"])
        return _result_from_payload(Path(cfg.out), payload)
    run = _build_run(cfg, info, device, payload)
    standing = _restore(run, payload)
    stopped_early, epochs_this_run = False, 0
    for epoch in range(standing.start_epoch, cfg.epochs):
        stats = _train_one_epoch(run, epoch)
        val = _validate(run.model, run.val_set, cfg, info, device)
        improved = _record_epoch(run, standing, epoch, stats, val)
        stopped_early = bool(cfg.patience and val.get("auc") is not None and standing.since_best >= cfg.patience)
        finished = stopped_early or epoch + 1 >= cfg.epochs
        _save_epoch(run, standing, epoch, val, improved=improved, finished=finished, stopped_early=stopped_early)
        epochs_this_run += 1
        if stopped_early:
            if info.is_main:
                log.info(
                    "early stopping: no better val AUC for %d epochs (best %s at epoch %s)",
                    standing.since_best,
                    _fmt(standing.best_auc),
                    standing.best_epoch,
                )
            break
        if cfg.stop_after and epochs_this_run >= cfg.stop_after and not finished:
            if info.is_main:
                log.info("stopping after %d epoch(s) as asked; continue with --resume", epochs_this_run)
            break
    completed = standing.history[-1]["epoch"] if standing.history else standing.start_epoch
    return TrainResult(
        out=str(run.out), epochs_completed=completed, best_epoch=standing.best_epoch, best_val_auc=standing.best_auc,
        threshold=standing.best_threshold, stopped_early=stopped_early, finished=stopped_early or completed >= cfg.epochs,
        history=standing.history,
    )  # fmt: skip


def _resolve_config(cfg: TrainConfig, info: DistInfo) -> tuple[TrainConfig, dict | None]:
    """The configuration to run: ``cfg``, or on ``--resume`` the saved one with ``cfg``'s runtime fields; plus
    the ``last.pt`` payload to resume from (None for a new run)."""
    out = Path(cfg.out)
    last_path = out / "last.pt"
    if not cfg.resume:
        if last_path.exists():
            raise TrainingError(f"{out} already holds a run (last.pt); use --resume to continue it or choose another --out")
        _validate_config(cfg)
        return cfg, None
    if not last_path.is_file():
        raise TrainingError(f"{out}: nothing to resume (no last.pt); start without --resume")
    payload = load_checkpoint(last_path)
    saved = TrainConfig.from_dict(payload["config"])
    cfg = dataclasses.replace(saved, **{k: getattr(cfg, k) for k in RUNTIME_FIELDS})
    if not payload["extra"].get("finished") and int(payload["extra"].get("world_size", 1)) != info.world_size:
        log.warning(
            "resuming with %d processes instead of %d: the result will not be identical", info.world_size, payload["extra"].get("world_size", 1)
        )
    _validate_config(cfg)
    return cfg, payload


def _load_splits(cfg: TrainConfig) -> tuple[list[ManifestRow], list[tuple[int, str]], CropDataset | None, str | None]:
    """Train rows and items, and the validation dataset (None without a val split) with where its fakes come from."""
    train_rows = subset_rows(read_manifest(cfg.manifest, split="train"), cfg.max_train_images, cfg.seed)
    try:
        val_rows = subset_rows(read_manifest(cfg.manifest, split="val"), cfg.max_val_images, cfg.seed + 1)
    except ManifestError:
        val_rows = []
    check_leakage(train_rows, val_rows)
    train_items = build_train_items(train_rows, cfg.fakes)
    kinds = [k for _, k in train_items]
    if "real" not in kinds or not ({"fake", "sbi"} & set(kinds)):
        raise TrainingError(
            f"the train split needs REAL crops and FAKE crops (fakes={cfg.fakes!r}; found "
            f"{kinds.count('real')} real, {kinds.count('fake')} fake, {kinds.count('sbi')} sbi)"
        )
    if not val_rows:
        log.warning("no val split: no model selection, no early stopping, best.pt = last epoch with threshold 0.5")
        return train_rows, train_items, None, None
    val_items, val_fakes = build_val_items(val_rows, cfg.fakes)
    val_set = None
    if val_items:
        dense = dense_points(cfg.sbi_mask, cfg.manifest, cfg.out, val_rows, val_items, cfg.progress)
        val_set = CropDataset(
            val_rows, val_items, seed=cfg.seed, purpose=PURPOSE_EVAL_SBI, sbi=SBIConfig.preset(cfg.sbi_colour, cfg.sbi_mask), dense=dense
        )
    return train_rows, train_items, val_set, val_fakes


def _build_run(cfg: TrainConfig, info: DistInfo, device: torch.device, payload: dict | None) -> _Run:
    """Data, model, optimiser and schedule, seeded identically on every rank (DDP also broadcasts rank 0's weights)."""
    manifest_hash = sha256_file(cfg.manifest) if Path(cfg.manifest).is_file() else None
    if payload is not None and manifest_hash != payload["config"].get("manifest_sha256"):
        log.warning("the manifest changed since this run started: the resumed run will not be identical")
    train_rows, train_items, val_set, val_fakes = _load_splits(cfg)
    kinds = [k for _, k in train_items]

    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % (2**32))
    model = DeepfakeClassifier(hidden=cfg.hidden, dropout=cfg.dropout)
    init_desc = init_model(model, cfg.init) if payload is None else "resumed"
    model.to(device)
    channels_last = cfg.channels_last and device.type == "cuda"
    if channels_last:
        model.to(memory_format=torch.channels_last)

    paired = cfg.fakes == "sbi" and cfg.sbi_pairs
    train_set = CropDataset(
        train_rows,
        train_items,
        augment=Augmenter(tight_p=cfg.tight_crop_p, codec_p=cfg.codec_p) if cfg.augment else None,
        seed=cfg.seed,
        purpose=PURPOSE_TRAIN,
        paired=paired,
        sbi=SBIConfig.preset(cfg.sbi_colour, cfg.sbi_mask),
        dense=dense_points(cfg.sbi_mask, cfg.manifest, cfg.out, train_rows, train_items, cfg.progress),
    )
    draws = cfg.samples_per_epoch or len(train_items)
    if paired:
        sampler = PairedSampler(train_items, draws, seed=cfg.seed, rank=info.rank, world_size=info.world_size)
    else:
        sampler = BalancedSampler(kind_weights(kinds, cfg.sbi_share), draws, seed=cfg.seed, rank=info.rank, world_size=info.world_size)
    steps_per_epoch = math.ceil(len(sampler) / cfg.batch_size)
    total_steps, warmup_steps = steps_per_epoch * cfg.epochs, int(round(cfg.warmup_epochs * steps_per_epoch))
    optimizer = torch.optim.AdamW(param_groups(model, cfg.lr, cfg.weight_decay, cfg.backbone_lr_mult), lr=cfg.lr)

    def schedule(step: int) -> float:
        return lr_factor(step, total_steps, warmup_steps, cfg.min_lr_ratio)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    amp_fp16 = cfg.amp and device.type == "cuda" and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler("cuda", enabled=amp_fp16)

    stored_config = {**cfg.to_dict(), "manifest_sha256": manifest_hash, "world_size": info.world_size, "init_description": init_desc}
    if payload is not None:
        stored_config = {**payload["config"], **{k: getattr(cfg, k) for k in RUNTIME_FIELDS}}
    out = Path(cfg.out)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            out / "config.yaml",
            config_yaml(cfg, {k: stored_config[k] for k in ("manifest_sha256", "world_size", "init_description") if k in stored_config}),
        )
        log.info(
            "training on %d crops (%s), validating on %d items (fakes from %s); %d process(es) on %s, init: %s",
            len(train_rows), ", ".join(f"{k} {kinds.count(k)}" for k in KINDS if kinds.count(k)),
            0 if val_set is None else len(val_set), val_fakes, info.world_size, device, init_desc,
        )  # fmt: skip
    freeze_bn = cfg.bn == "frozen" or (cfg.bn == "auto" and cfg.batch_size < BN_MIN_BATCH)
    return _Run(cfg, info, device, out, model, optimizer, scheduler, scaler, train_set, sampler, val_set, val_fakes,
                stored_config, channels_last, freeze_bn)  # fmt: skip


def _restore(run: _Run, payload: dict | None) -> _Standing:
    """Weights, optimiser, schedule, scaler, RNG and standing from ``last.pt``; or a fresh standing."""
    if payload is None:
        # Dropout masks and other global randomness differ per rank, the model initialisation did not.
        torch.manual_seed(run.cfg.seed + 7919 * run.info.rank)
        return _Standing()
    run.model.load_state_dict(payload["model_state"])
    run.optimizer.load_state_dict(payload["optimizer_state"])
    run.scheduler.load_state_dict(payload["scheduler_state"])
    extra = payload["extra"]
    if extra.get("scaler"):
        run.scaler.load_state_dict(extra["scaler"])
    standing = _Standing(
        start_epoch=int(payload["epoch"]), history=list(extra.get("history", [])), best_auc=extra.get("best_auc"),
        best_epoch=extra.get("best_epoch"), best_threshold=float(extra.get("best_threshold", 0.5)), since_best=int(extra.get("since_best", 0)),
    )  # fmt: skip
    rng_states = extra.get("rng", [])
    if run.info.rank < len(rng_states):
        set_rng_state(rng_states[run.info.rank], run.device)
    log.info("resuming %s after epoch %d", run.out, standing.start_epoch)
    return standing


def _train_one_epoch(run: _Run, epoch: int) -> dict:
    """One pass over the epoch's draws; returns loss, accuracy, images and seconds summed over all processes."""
    from tqdm import tqdm

    cfg, info, model = run.cfg, run.info, run.model
    frozen = epoch < cfg.freeze_backbone_epochs
    set_phase(model, frozen, run.freeze_bn, cfg.freeze_blocks, cfg.backbone_params)
    if info.enabled and run.ddp_frozen != frozen:
        # DDP registers the parameters that need gradients when it is built: rebuild when that set changes.
        from torch.nn.parallel import DistributedDataParallel

        run.ddp_model = DistributedDataParallel(model, device_ids=[run.device.index] if run.device.type == "cuda" else None)
        run.ddp_frozen = frozen
    forward = run.ddp_model if info.enabled else model
    run.sampler.set_epoch(epoch)
    run.train_set.set_epoch(epoch)
    generator = torch.Generator()
    generator.manual_seed(cfg.seed + epoch)
    loader = torch.utils.data.DataLoader(
        run.train_set, batch_size=cfg.batch_size, sampler=run.sampler, num_workers=cfg.workers, collate_fn=collate,
        worker_init_fn=worker_init if cfg.workers else None, pin_memory=run.device.type == "cuda",
        generator=generator, drop_last=False,
    )  # fmt: skip
    trainable = [p for p in model.parameters() if p.requires_grad]
    loss_fn = nn.BCEWithLogitsLoss()
    loss_sum, correct, seen = 0.0, 0, 0
    start = time.perf_counter()
    bar = tqdm(total=len(run.sampler), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="img", disable=not (cfg.progress and info.is_main), leave=False)
    for images, targets, _ in loader:
        images = images.to(run.device, non_blocking=True)
        targets = targets.to(run.device, non_blocking=True)
        with _autocast(run.device, cfg.amp):
            logits = forward(normalize_batch(images, run.channels_last))
        loss = loss_fn(logits.float(), targets)
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(loss).backward()
        if cfg.grad_clip > 0:
            run.scaler.unscale_(run.optimizer)
            torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip)
        run.scaler.step(run.optimizer)
        run.scaler.update()
        run.scheduler.step()
        n = len(targets)
        loss_sum += float(loss.detach()) * n
        correct += int(((logits.detach().float() > 0).float() == targets).sum())
        seen += n
        bar.update(n)
        bar.set_postfix(loss=f"{loss_sum / seen:.4f}", img_s=f"{seen / max(time.perf_counter() - start, 1e-9):.1f}")
    bar.close()
    seconds = time.perf_counter() - start
    totals = np.sum(all_gather(info, [loss_sum, correct, seen]), axis=0) if info.enabled else [loss_sum, correct, seen]
    return {"frozen": frozen, "loss": float(totals[0] / max(totals[2], 1)), "acc": float(totals[1] / max(totals[2], 1)),
            "images": int(totals[2]), "train_seconds": seconds, "start": start}  # fmt: skip


def _record_epoch(run: _Run, standing: _Standing, epoch: int, stats: dict, val: dict) -> bool:
    """Append the epoch to the history and update the best; True when this epoch is the new best."""
    val_auc = val.get("auc")
    standing.history.append({
        "epoch": epoch + 1,
        "lr": float(run.optimizer.param_groups[0]["lr"]),
        "frozen_backbone": stats["frozen"],
        "train_loss": stats["loss"],
        "train_acc": stats["acc"],
        "train_images": stats["images"],
        "train_images_per_s": float(stats["images"] / max(stats["train_seconds"], 1e-9)),
        "val_loss": val.get("loss"),
        "val_auc": val_auc,
        "val_ap": val.get("ap"),
        "val_eer": val.get("eer"),
        "val_threshold": val.get("threshold"),
        "val_balanced_accuracy": (val.get("at_threshold") or {}).get("balanced_accuracy"),
        "seconds": time.perf_counter() - stats["start"],
    })  # fmt: skip
    # No usable validation AUC (no val split, or one class only): the latest epoch stands as best.
    improved = standing.best_auc is None if val_auc is None else (standing.best_auc is None or val_auc > standing.best_auc)
    if improved:
        standing.best_auc, standing.best_epoch, standing.since_best = val_auc, epoch + 1, 0
        standing.best_threshold = float(val.get("threshold", 0.5)) if val else 0.5
    else:
        standing.since_best += 1
    return improved


def _save_epoch(run: _Run, standing: _Standing, epoch: int, val: dict, *, improved: bool, finished: bool, stopped_early: bool) -> None:
    """``best.pt`` when improved, then ``last.pt`` (with everything :func:`_restore` needs), the log and plots."""
    info = run.info
    rng = all_gather(info, rng_state(run.device))
    if info.is_main:
        metrics = {"val": val, "epoch": epoch + 1, "val_fakes": run.val_fakes}
        if run.cfg.keep_epochs:
            save_checkpoint(run.out / f"epoch-{epoch + 1:02d}.pt", run.model, epoch=epoch + 1, config=run.stored_config,
                            metrics=metrics, threshold=float(val.get("threshold", 0.5)) if val else 0.5, name=run.out.name)  # fmt: skip
        if improved:
            save_checkpoint(run.out / "best.pt", run.model, epoch=epoch + 1, config=run.stored_config, metrics=metrics,
                            threshold=standing.best_threshold, name=run.out.name)  # fmt: skip
        extra = {
            "history": standing.history,
            "best_auc": standing.best_auc,
            "best_epoch": standing.best_epoch,
            "best_threshold": standing.best_threshold,
            "since_best": standing.since_best,
            "rng": rng,
            "scaler": run.scaler.state_dict() if run.scaler.is_enabled() else {},
            "world_size": info.world_size,
            "finished": finished,
            "stopped_early": stopped_early,
        }
        save_checkpoint(
            run.out / "last.pt", run.model, run.optimizer, run.scheduler, epoch=epoch + 1, config=run.stored_config,
            metrics=metrics, threshold=standing.best_threshold, extra=extra, name=run.out.name,
        )  # fmt: skip
        write_log(run.out, standing.history)
        plot_history(run.out, standing.history)
        entry = standing.history[-1]
        log.info(
            "epoch %d/%d: train loss %.4f acc %.3f (%.1f img/s) | val loss %s AUC %s EER %s%s",
            epoch + 1, run.cfg.epochs, entry["train_loss"], entry["train_acc"], entry["train_images_per_s"],
            _fmt(entry["val_loss"]), _fmt(entry["val_auc"]), _fmt(entry["val_eer"]), "  *best*" if improved and run.val_set is not None else "",
        )  # fmt: skip
    barrier(info)


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
    if not 0.0 <= cfg.tight_crop_p <= 1.0:
        problems.append("tight-crop-p must be in [0, 1]")
    if not 0.0 <= cfg.codec_p <= 1.0:
        problems.append("codec-p must be in [0, 1]")
    if cfg.threshold_criterion not in THRESHOLD_CRITERIA:
        problems.append(f"threshold criterion must be one of {THRESHOLD_CRITERIA}")
    if problems:
        raise TrainingError("; ".join(problems))
