"""The one trainer every trial runs: a config in, metrics out through callbacks.

It knows nothing of Ray, MLflow or YAML. Per step: (mixup) -> label smoothing -> forward
under bf16 autocast on GPU -> CE (+ KD) -> SGD; lr and DropBlock keep_prob are set per step.
Every epoch: evaluate, checkpoint ``workdir/last.pt`` (weights, optimiser and every random
stream), notify callbacks. A run whose ``workdir`` already holds a checkpoint of the same config
resumes after its last epoch and ends exactly as an uninterrupted run would.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..data import train_dataset, val_dataset
from ..data.device_batches import DeviceBatches, DeviceEval
from ..data.folder import DataError, skipped_files
from ..data.loaders import loader_for
from ..data.mixup import mixup_pairs, sample_lambda
from ..data.transforms import to_model_input
from ..evaluation.inference import Inference
from ..evaluation.retrieval import evaluate_recall
from ..evaluation.top1 import evaluate_top1
from ..models import set_keep_prob
from . import checkpoint as ckpt
from . import rng
from .callbacks import notify
from .config import TrainConfig
from .distributed import average_buffers, mean_across_ranks, unwrap, world, wrap
from .losses import arc_margin, distillation, smooth, soft_cross_entropy, teacher_probabilities
from .optim import build_optimizer
from .schedules import keep_prob, learning_rate
from .transfer import build_network, load_backbone, set_bn_momentum

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: retrying will not help."""


SKIP_LOG = "skipped_files.txt"


@dataclass
class TrainResult:
    model: torch.nn.Module
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    checkpoint: Path | None = None
    resumed_from: int = 0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


TEACHER_ON_DEVICE_FRACTION = 0.1  # of the card's memory a KD table may take there


def place_teacher_table(probs: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Where a CUDA trial keeps its teacher's probabilities (fp16, N x K): on the card when they
    take at most a tenth of its memory (CIFAR 1 MB; ImageNet's 2.6 GB on a 141-GB H200), so a
    batch's rows are gathered there without a host sync; else on the host, pinned (on a small card
    ImageNet's table would crowd the model out; its gather then makes a pageable copy, a sync a
    step, measured by benchmarks/gpu_suite.sh's syncs-kd)."""
    total = torch.cuda.get_device_properties(device).total_memory
    if fits_on_device(probs.numel() * probs.element_size(), total):
        return probs.to(device)
    return probs.pin_memory()


def fits_on_device(nbytes: int, device_total: int) -> bool:
    return nbytes <= TEACHER_ON_DEVICE_FRACTION * device_total


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    def __init__(
        self,
        cfg: TrainConfig,
        workdir: str | Path,
        callbacks: list | None = None,
        progress: bool = True,
        progress_every: float = 30.0,
    ):
        """``progress``: a tqdm bar on the terminal; ``progress_every``: seconds between the
        callbacks' ``on_progress`` notes inside an epoch."""
        self.cfg = cfg
        self.progress_every = progress_every
        self.workdir = Path(workdir)
        self.callbacks = list(callbacks or [])
        self.progress = progress
        self.device = resolve_device(cfg.device)
        # training's precision and layout; validation and the evaluation suite run in the same
        self.inference = Inference.for_training(cfg, self.device)
        # fp16 needs its gradients scaled (bf16 has float32's range); a disabled scaler is a no-op
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.inference.precision == "fp16")
        self.mix_gen = torch.Generator().manual_seed(cfg.seed + 17)
        self.rank, self.world = world()  # data-parallel when a process group exists (distributed.py)
        self._device_batches: DeviceBatches | None = None

    # -- set-up ---------------------------------------------------------------------------
    def _teacher(self, n_train: int, num_classes: int) -> torch.Tensor | None:
        reg = self.cfg.reg
        if reg.kd_temperature <= 0:
            return None
        if not reg.teacher_logits:
            raise ValueError("reg.kd_temperature > 0 needs reg.teacher_logits (a .pt file of N x K logits)")
        logits = torch.load(reg.teacher_logits, map_location="cpu", weights_only=True)
        if logits.shape != (n_train, num_classes):
            raise ValueError(
                f"{reg.teacher_logits}: teacher logits have shape {tuple(logits.shape)}, "
                f"expected ({n_train}, {num_classes}) for this training set"
            )
        if not torch.isfinite(logits).all():
            raise ValueError(f"{reg.teacher_logits}: teacher logits are not finite")
        probs = teacher_probabilities(logits, reg.kd_temperature)
        if self.device.type == "cuda":
            return place_teacher_table(probs.half(), self.device)
        return probs

    def _datasets(self):
        """Train and val sets; unreadable files they skip are logged in the workdir."""
        device_path = self.cfg.data.pipeline == "device"
        train_ds, val_ds = train_dataset(self.cfg.data), val_dataset(self.cfg.data, raw=device_path)
        self.workdir.mkdir(parents=True, exist_ok=True)
        for ds in (train_ds, val_ds):
            if hasattr(ds, "skip_log"):
                ds.skip_log = self.workdir / SKIP_LOG
        B = self.cfg.optim.batch_size
        if B % (2 * self.world if self.cfg.reg.mixup_alpha > 0 else self.world):
            raise ValueError(f"optim.batch_size {B} does not split evenly over {self.world} data-parallel workers")
        if len(train_ds) < B:
            where = self.cfg.data.path or "synthetic data"
            raise DataError(f"{where}: the train split has {len(train_ds)} images, fewer than one batch of {B}")
        return train_ds, val_ds

    def _resume(self, model, opt) -> tuple[int, list[dict[str, float]]]:
        """Epoch to start from and the history so far, restoring weights, optimiser and RNG."""
        last = self.workdir / ckpt.LAST
        if not last.exists():
            return 0, []
        state = ckpt.load(last, self.device)
        if state.get("config_hash") != self.cfg.config_hash():
            log.warning("%s belongs to another config; starting afresh", last)
            return 0, []
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if "rng" in state:
            rng.restore(state["rng"], {"mixup": self.mix_gen})
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        log.info("resuming %s after epoch %d", last, state["epoch"])
        return state["epoch"] + 1, state["history"]

    def fit(self) -> TrainResult:
        cfg, dev = self.cfg, self.device
        self._set_up_process()
        train_ds, val_ds = self._datasets()
        num_classes = train_ds.num_classes
        val_loader = self._val_batches(val_ds)
        teacher = self._teacher(len(train_ds), num_classes)
        steps_per_epoch = (cfg.data.epoch_size or len(train_ds)) // cfg.optim.batch_size
        model, opt, start_epoch, history = self._model(num_classes, steps_per_epoch)
        last = self.workdir / ckpt.LAST
        start = {"num_classes": num_classes, "train_images": len(train_ds), "val_images": len(val_ds)}
        start |= {"steps_per_epoch": steps_per_epoch, "device": str(dev), "start_epoch": start_epoch}
        start["compute"] = f"{dev.type}/{self.inference.precision}"  # what it ran on and in
        start["compile"] = cfg.compile
        notify(self.callbacks, "on_train_start", start | {"config_hash": cfg.config_hash()})
        metrics: dict[str, float] = dict(history[-1]) if history else {}
        for epoch in range(start_epoch, cfg.optim.epochs):
            metrics = self._epoch(model, opt, train_ds, teacher, epoch, steps_per_epoch, val_loader)
            history.append(metrics)
            if self.rank == 0:
                ckpt.save(last, self._state(unwrap(model), opt, epoch, history, num_classes))
            notify(self.callbacks, "on_epoch_end", epoch, metrics, last)
        return self._end(unwrap(model), metrics, history, last, start_epoch)

    def _set_up_process(self) -> None:
        if self.cfg.threads and self.device.type == "cpu":
            torch.set_num_threads(self.cfg.threads)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed-size crops: let cuDNN pick its fastest kernels
        seed_everything(self.cfg.seed)

    def _model(self, num_classes: int, steps_per_epoch: int):
        """The network on its device (backbone weights loaded for transfer), its optimiser, and
        where a resumed run continues: (model, optimiser, first epoch, history so far)."""
        cfg, dev = self.cfg, self.device
        model = build_network(cfg, num_classes)
        if cfg.transfer is not None:  # weights first; a resumed run's own checkpoint then replaces them
            load_backbone(model, cfg.transfer)
            set_bn_momentum(model, cfg.transfer, steps_per_epoch)
        model = model.to(dev)
        if self.inference.channels_last:
            model = model.to(memory_format=torch.channels_last)
        opt = build_optimizer(model, cfg.optim)
        start_epoch, history = self._resume(model, opt)
        if cfg.sync_bn and self.world > 1:
            if dev.type != "cuda":
                raise ValueError("sync_bn: torch's SyncBatchNorm runs on GPUs only; this trial's workers have none")
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = wrap(model, dev)  # DDP after loading: keys stay unprefixed
        if cfg.compile != "none":
            # in place (nn.Module.compile): state_dict keys stay those of the network, checkpoints
            # stay loadable uncompiled; DropBlock's keep_prob is a buffer, so its schedule never recompiles
            model.compile(backend=cfg.compile)
        return model, opt, start_epoch, history

    def _epoch(self, model, opt, train_ds, teacher, epoch: int, steps: int, val_loader) -> dict[str, float]:
        """One epoch's training, then its validation where due; diverged validation raises."""
        cfg = self.cfg
        metrics = self._train_epoch(model, opt, train_ds, teacher, epoch, steps)
        average_buffers(model)
        if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.optim.epochs:
            # every rank holds the same weights: each evaluates alone (no collective to wait on)
            metrics |= self._evaluate(unwrap(model), val_loader)
            key = f"recall_at_{cfg.head.recall_k[0]}" if cfg.head.kind == "embedding" else "val_loss"
            if not math.isfinite(metrics[key]):
                raise TrainingDiverged(f"validation {key} is {metrics[key]} at epoch {epoch + 1}")
        skipped = skipped_files(self.workdir / SKIP_LOG)
        if skipped:
            metrics["skipped_images"] = float(len(skipped))
        return metrics

    def _end(self, model, metrics: dict[str, float], history: list, last: Path, start_epoch: int) -> TrainResult:
        result = TrainResult(model, metrics, history, last if last.exists() else None, start_epoch)
        skipped = skipped_files(self.workdir / SKIP_LOG)
        if skipped:
            log.warning("%d unreadable image(s) skipped, e.g. %s", len(skipped), skipped[0])
        end = {"metrics": metrics, "checkpoint": result.checkpoint, "skipped": skipped}
        notify(self.callbacks, "on_train_end", end)
        return result

    def _evaluate(self, model, val_loader) -> dict[str, float]:
        """Top-1 of a classifier; Recall@K of a retrieval net (its val split: unseen classes)."""
        if self.cfg.head.kind == "embedding":
            return evaluate_recall(
                model, val_loader, self.device, self.cfg.head.recall_k, self.inference.amp, self.inference.dtype
            )
        return evaluate_top1(model, val_loader, self.inference)

    def _state(self, model, opt, epoch: int, history: list, num_classes: int) -> dict:
        return {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "epoch": epoch,
            "history": history,
            "config_hash": self.cfg.config_hash(),
            "config": self.cfg.model_dump(mode="json"),
            "num_classes": num_classes,
            "rng": rng.capture({"mixup": self.mix_gen}),
            "scaler": self.scaler.state_dict(),
        }

    def _train_epoch(self, model, opt, train_ds, teacher, epoch: int, steps_per_epoch: int) -> dict[str, float]:
        cfg = self.cfg
        uses_dropblock = set_keep_prob(model, 1.0) > 0
        model.train()
        pace = _Pace(self.callbacks, epoch, cfg.optim.epochs, steps_per_epoch, every=self.progress_every)
        running = torch.zeros((), device=self.device)
        seen, lr = 0, 0.0
        bar = tqdm(
            self._batches(train_ds, epoch, steps_per_epoch),
            desc=f"epoch {epoch + 1}/{cfg.optim.epochs}",
            leave=False,
            disable=not self.progress,
            total=steps_per_epoch,
        )
        for i, (x, y, idx) in enumerate(bar):
            step = epoch * steps_per_epoch + i
            lr = self._schedule(opt, model, step, steps_per_epoch, uses_dropblock)
            x, target, y, teacher_probs = self._inputs(x, y, idx, teacher, train_ds.num_classes)
            running += self._step(model, opt, x, target, y, teacher_probs)
            seen += x.shape[0]
            if self.progress and i % 20 == 0:
                bar.set_postfix(loss=f"{running.item() / (i + 1):.3f}", lr=f"{lr:.3g}")
            pace.tick(i + 1, seen * self.world)
        bar.close()
        train_loss = mean_across_ranks(running).item() / max(1, steps_per_epoch)
        if not math.isfinite(train_loss):
            raise TrainingDiverged(f"training loss is {train_loss} at epoch {epoch + 1}")
        elapsed = pace.elapsed()
        images_per_s = seen * self.world / max(elapsed, 1e-9)  # every rank's share of the global batch
        return {"loss": train_loss, "lr": lr, "epoch_time_s": elapsed, "train_images_per_s": images_per_s}

    def _val_batches(self, val_ds):
        """The validation batches: the device path crops in-memory images in batches there."""
        if self.cfg.data.pipeline == "device":
            return DeviceEval(val_ds, self.cfg.data.eval_crop, self.device)
        return loader_for(val_ds, max(self.cfg.optim.batch_size, 64), False, self.cfg.data.num_workers)

    def _batches(self, train_ds, epoch: int, steps_per_epoch: int):
        """This rank's ``steps_per_epoch`` batches of the epoch (type-1 Mixup draws two batches a
        step: the loader then yields 2B images, an epoch 2N)."""
        cfg = self.cfg
        B = cfg.optim.batch_size
        two_batches = cfg.reg.mixup_alpha > 0 and cfg.reg.mixup_type == 1
        if cfg.data.pipeline == "device":
            if self._device_batches is None:  # the images move to the device once per run
                self._device_batches = DeviceBatches(train_ds, cfg.data, self.device, cfg.seed)
            shard = (self.rank, self.world)
            return self._device_batches.epoch(epoch, 2 * B if two_batches else B, steps_per_epoch, shard)
        loader = loader_for(
            train_ds,
            (2 * B if two_batches else B) // self.world,  # this rank's share of the global batch
            True,
            cfg.data.num_workers,
            cfg.seed * 1000 + epoch,
            2 if two_batches else 1,
            (self.rank, self.world),
            epoch_size=steps_per_epoch * B,
        )
        return itertools.islice(loader, steps_per_epoch)

    def _schedule(self, opt, model, step: int, steps_per_epoch: int, uses_dropblock: bool) -> float:
        """Set this step's lr and DropBlock keep_prob; returns the lr."""
        cfg = self.cfg
        total_steps = steps_per_epoch * cfg.optim.epochs
        lr = learning_rate(step, total_steps, steps_per_epoch, cfg.optim)
        for g in opt.param_groups:
            g["lr"] = lr
        if uses_dropblock:
            kp = keep_prob(step, total_steps, cfg.reg.dropblock_keep_prob, cfg.reg.dropblock_start_keep_prob)
            set_keep_prob(model, kp)
        return lr

    def _inputs(self, x, y, idx, teacher, num_classes: int):
        """The step's model input and soft targets (label smoothing, Mixup) and, for KD, the
        teacher's probabilities mixed alike; images arrive uint8 and are normalised here."""
        cfg, dev = self.cfg, self.device
        x = to_model_input(x, dev)
        y = y.to(dev, non_blocking=True)
        parts = [x, F.one_hot(y, num_classes).float()]
        if teacher is not None:  # the batch's rows, gathered where the table is (see place_teacher_table)
            if teacher.device == dev:
                rows = teacher[idx.to(dev, non_blocking=True)]
            else:  # a host table: indices on the host (a sync when they come from the card)
                rows = teacher[idx.cpu()].to(dev, non_blocking=True)
            parts.append(rows.float())
        if cfg.reg.mixup_alpha > 0:
            # the global batch's draws on every rank, this rank's share: the pairs and weights a
            # single process would use for these images (see distributed.py)
            lam = sample_lambda(cfg.optim.batch_size, cfg.reg.mixup_alpha, dev, self.mix_gen)[self.rank :: self.world]
            parts = mixup_pairs(parts, lam, cfg.reg.mixup_type)
        x, target = parts[0], smooth(parts[1], cfg.reg.label_smoothing)
        if self.inference.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, target, y, (parts[2] if teacher is not None else None)

    def _step(self, model, opt, x, target, y, teacher_probs) -> torch.Tensor:
        """One optimiser step over the batch, in ``optim.accumulation_steps`` micro-batches whose
        gradients add up (each loss weighted by its share of the batch: the batch's mean, as one
        pass); returns the detached loss (no host sync). Data-parallel ranks all-reduce once, on
        the last micro-batch."""
        k = self.cfg.optim.accumulation_steps
        opt.zero_grad(set_to_none=True)
        total = torch.zeros((), device=x.device)
        parts = [p.chunk(k) if p is not None else [None] * k for p in (x, target, y, teacher_probs)]
        for j, (xj, tj, yj, pj) in enumerate(zip(*parts, strict=True)):
            last = j == k - 1
            with model.no_sync() if not last and hasattr(model, "no_sync") else contextlib.nullcontext():
                loss = self._loss(model, xj, tj, yj, pj) * (xj.shape[0] / x.shape[0])  # exact for uneven splits
                self.scaler.scale(loss).backward()
            total += loss.detach()
        self.scaler.step(opt)
        self.scaler.update()
        return total

    def _loss(self, model, x, target, y, teacher_probs) -> torch.Tensor:
        cfg = self.cfg
        with torch.autocast(self.device.type, dtype=self.inference.dtype, enabled=self.inference.amp):
            logits = model(x)
        if cfg.head.kind == "embedding" and cfg.head.loss == "arcface":  # cosines -> margin logits
            logits = arc_margin(logits, y, cfg.head.arc_scale, cfg.head.arc_margin)
        loss = soft_cross_entropy(logits, target)
        if teacher_probs is not None:
            loss = loss + distillation(logits, teacher_probs, cfg.reg.kd_temperature)
        return loss


class _Pace:
    """Progress inside an epoch for the callbacks (``on_progress``): steps done of the run's
    total, images/s and the time left, at most every ``every`` seconds (a long epoch is otherwise
    silent until it ends). Reading the clock costs nothing; no device sync is added."""

    def __init__(self, callbacks: list, epoch: int, epochs: int, steps: int, every: float) -> None:
        self.callbacks, self.epoch, self.epochs, self.steps, self.every = callbacks, epoch, epochs, steps, every
        self.t0 = self.last = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def tick(self, done: int, images: int) -> None:
        now = time.perf_counter()
        if now - self.last < self.every or done == self.steps:
            return
        self.last = now
        rate = done / (now - self.t0)
        left = (self.steps - done + (self.epochs - self.epoch - 1) * self.steps) / max(rate, 1e-9)
        info = {
            "epoch": self.epoch + 1,
            "epochs": self.epochs,
            "step": done,
            "steps": self.steps,
            "images_per_s": images / (now - self.t0),
            "train_eta_s": left,
            "fraction": (self.epoch * self.steps + done) / (self.epochs * self.steps),
        }
        notify(self.callbacks, "on_progress", info)
