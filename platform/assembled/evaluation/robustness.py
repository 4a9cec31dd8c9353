"""mCE (ImageNet-C protocol) and mFR / mT5D (ImageNet-P protocol) of a classifier.

Corruptions are generated from the clean evaluation crops in chunks of ``CHUNK`` images, the
chunk index entering the seed, so results do not depend on the inference batch size.
Normalisation: per-corruption CE_c = sum_s E_cs / sum_s E_cs(reference); mCE = mean CE_c
(x100). The reference is AlexNet (ImageNet) or a baseline model's own errors; with none, the
unnormalised mean error is reported (as the paper does for Food-101).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from ..data import corruptions
from ..data.corruptions import ops
from ..data.corruptions.params import severity_set
from ..data.folder import DataError, ImageFolderDataset
from ..data.perturbations import PERTURBATIONS, param_set, sequence
from ..data.transforms import normalize
from ..data.video import x264_roundtrip
from ..robustness_sets import NOISE_PERTURBATIONS as NOISE
from .inference import Inference

CHUNK = 100
JPEG_RELEASED = ("imagenet", "tiny")  # the sets Hendrycks released as JPEG quality 85


def predict(
    model: nn.Module, images01: torch.Tensor, on: Inference | torch.device, batch: int = 256, topk: int = 1
) -> torch.Tensor:
    """Top-k classes of [0, 1] images, left on the device (a copy to the host is a sync per
    batch; callers count on the device and read a total once)."""
    how = Inference.of(on)
    out = []
    for i in range(0, images01.shape[0], batch):
        logits = how.logits(model, normalize(images01[i : i + batch].to(how.device)))
        out.append(logits.topk(min(topk, logits.shape[1]), dim=1).indices)
    return torch.cat(out)


def clean_tensor(dataset, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluation crops as uint8 N x 3 x H x W and labels (dataset yields uint8 crops)."""
    n = len(dataset) if limit is None else min(limit, len(dataset))
    # spread a subset over the whole set so every class is represented
    idx = torch.linspace(0, len(dataset) - 1, n).round().long().unique() if n < len(dataset) else torch.arange(n)
    items = [dataset[int(i)] for i in idx]  # one load (decode + transform) per image
    return torch.stack([torch.as_tensor(it[0]) for it in items]), torch.tensor([it[1] for it in items])


@torch.no_grad()
def corruption_errors(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    names: Iterable[str],
    on: Inference | torch.device,
    seed: int = 0,
    family: str | None = None,
    progress: bool = False,
    released_jpeg: bool = True,
    on_progress: Callable[[float], None] | None = None,
    scaled: bool = True,
) -> dict[str, list[float]]:
    """Top-1 error per corruption per severity (5 values) on uint8 clean crops.

    ``released_jpeg``: ImageNet-C and Tiny-ImageNet-C were released as JPEG quality 85 and
    AlexNet's errors were measured on those files, so their sets (224 and 64 px) take the same
    step (CIFAR-10-C was released as uint8 arrays: no JPEG). ``scaled``: see ``corrupt``.
    ``on``: the run's inference, the clean pass's too (a bare device: FP32)."""
    how = Inference.of(on)
    device = how.device
    model.eval()
    names = list(names)
    wrong = torch.zeros(len(names), 5, dtype=torch.long, device=device)  # read once, at the end
    total = images.shape[0]
    bar = tqdm(total=len(names) * 5 * total, desc="mCE", disable=not progress, unit="img", leave=False)
    done = 0
    for start in range(0, total, CHUNK):
        x = images[start : start + CHUNK].to(device).float() / 255
        y = labels[start : start + CHUNK].to(device)
        jpeg = released_jpeg and (family or severity_set(min(x.shape[-2:]))) in JPEG_RELEASED
        for c, name in enumerate(names):
            for s, xc in corruptions.corrupt_severities(x, name, seed * 1_000_003 + start, family, scaled):
                if jpeg:
                    xc = ops.release_jpeg(xc)
                wrong[c, s - 1] += (predict(model, xc, how)[:, 0] != y).sum()
                bar.update(x.shape[0])
            if on_progress:  # counted here: a disabled tqdm bar does not count
                done += 5 * x.shape[0]
                on_progress(done / (len(names) * 5 * total))
    bar.close()
    counts = wrong.tolist()
    return {n: [w / total for w in counts[c]] for c, n in enumerate(names)}


@torch.no_grad()
def folder_corruption_errors(
    model: nn.Module,
    root: str | Path,
    names: Iterable[str],
    on: Inference | torch.device,
    size: int,
) -> dict[str, list[float]]:
    """Errors on a pre-generated ImageNet-C folder ``<root>/<corruption>/<severity>/<class>/<image>``."""
    from torchvision.transforms import v2

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"ImageNet-C folder does not exist: {root}")
    tf = v2.Compose([v2.ToImage(), v2.CenterCrop(size)])
    errors = {}
    for name in names:
        errs = []
        for s in range(1, 6):
            path = root / name / str(s)
            if not path.is_dir():
                raise DataError(f"{path}: missing from the ImageNet-C folder (corruption {name}, severity {s})")
            ds = ImageFolderDataset(path, tf)
            images, labels = clean_tensor(ds)
            top1 = predict(model, images.float() / 255, on)[:, 0]
            errs.append(float((top1 != labels.to(top1.device)).float().mean()))
        errors[name] = errs
    return errors


def normalised_ce(errors: dict[str, list[float]], reference: dict[str, float | list[float]] | None) -> dict[str, float]:
    """CE_c x100 per corruption and mCE; with no reference, mean errors x100 (unnormalised)."""
    out = {}
    for name, errs in errors.items():
        mean_err = sum(errs) / len(errs)
        if reference is None:
            out[name] = 100 * mean_err
        else:
            ref = reference[name]
            ref_mean = sum(ref) / len(ref) if isinstance(ref, list | tuple) else ref
            out[name] = 100 * mean_err / max(ref_mean, 1e-9)
    return out


def relative_mce(
    errors: dict[str, list[float]],
    clean_error: float,
    reference: dict[str, float | list[float]],
    reference_clean_error: float,
) -> float:
    vals = []
    for name, errs in errors.items():
        ref = reference[name]
        ref_mean = sum(ref) / len(ref) if isinstance(ref, list | tuple) else ref
        vals.append((sum(errs) / len(errs) - clean_error) / max(ref_mean - reference_clean_error, 1e-9))
    return 100 * sum(vals) / len(vals)


@torch.no_grad()
def flip_rates(
    model: nn.Module,
    images: torch.Tensor,
    on: Inference | torch.device,
    seed: int = 0,
    progress: bool = False,
    names: Iterable[str] = PERTURBATIONS,
    contexts: torch.Tensor | None = None,
    on_progress: Callable[[float], None] | None = None,
    x264: bool = False,
) -> tuple[dict[str, float], dict[str, float]]:
    """Flip probability and top-5 distance per perturbation (unnormalised), as ImageNet-P's
    ``test.py``: noise frames against the first, the others frame against previous frame.
    ``contexts``: uint8 images before their centre crop (see perturbations.sequence).
    ``x264``: pass the sequences through the reference's video encoding where it had one
    (ImageNet-P and Tiny-ImageNet-P; CIFAR-10-P was saved as arrays). ``on``: the run's
    inference (a bare device: FP32)."""
    how = Inference.of(on)
    device = how.device
    model.eval()
    names = list(names)
    flips = torch.zeros(len(names), dtype=torch.float64, device=device)  # summed on the device, read once at the end
    t5d = torch.zeros(len(names), dtype=torch.float64, device=device)
    pairs = {n: 0 for n in names}
    bar = tqdm(total=len(names) * images.shape[0], desc="mFR", disable=not progress, unit="seq", leave=False)
    done = 0
    for start in range(0, images.shape[0], CHUNK):
        x = images[start : start + CHUNK].to(device).float() / 255
        video = x264 and param_set(min(x.shape[-2:])).video
        for c, name in enumerate(names):
            ctx = None if contexts is None else contexts[start : start + CHUNK].to(device).float() / 255
            frames = sequence(x, name, seed * 1_000_003 + start, context=ctx)
            if video:
                frames = x264_roundtrip(frames, noise=name in NOISE)
            f, n = frames.shape[:2]
            top5 = predict(model, frames.flatten(0, 1), how, topk=5).view(f, n, -1)
            ref = top5[:1].expand_as(top5[1:]) if name in NOISE else top5[:-1]
            cur = top5[1:]
            flips[c] += (cur[..., 0] != ref[..., 0]).sum()
            t5d[c] += top5_distance(ref, cur).sum()
            pairs[name] += (f - 1) * n
            bar.update(n)
            if on_progress:
                done += n
                on_progress(done / (len(names) * images.shape[0]))
    bar.close()
    f_sum, t_sum = flips.tolist(), t5d.tolist()
    return {n: f_sum[c] / pairs[n] for c, n in enumerate(names)}, {n: t_sum[c] / pairs[n] for c, n in enumerate(names)}


def top5_distance(prev: torch.Tensor, cur: torch.Tensor) -> torch.Tensor:
    """Hendrycks' top-5 distance: sum_k |(k-1) - min(sigma(k)-1, 5)| with sigma the rank in the
    later frame of the earlier frame's k-th class (absent -> 5)."""
    k = prev.shape[-1]
    match = prev.unsqueeze(-1) == cur.unsqueeze(-2)  # ... x k (prev) x k (cur)
    rank = torch.where(match.any(-1), match.float().argmax(-1), torch.full(prev.shape, k, device=prev.device))
    return (torch.arange(k, device=prev.device) - rank.clamp(max=5)).abs().sum(-1)
