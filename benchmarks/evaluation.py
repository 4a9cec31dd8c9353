"""Cost of a full mCE + mFR evaluation relative to one clean evaluation pass, per corruption,
measured side by side in one process on the same model, images and device.

    python benchmarks/evaluation.py [--size 64] [--images 500] [--mfr-images 100] [--model resnet50d]

mCE's 75 corrupted copies are a floor of 75x a clean pass; generation adds to it, and so does the
JPEG q85 step of the released 224/64-px sets (printed apart: a fixed ~0.1 ms an image on a CPU
core, about one clean pass per corruption for the default width-16 net, a third of that at
width 32). mFR's geometric perturbations transform the uncropped context (eval resize, square)
as the evaluation suite does.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

from assembled.data import corruptions  # noqa: E402
from assembled.data.corruptions import ops  # noqa: E402
from assembled.data.corruptions.params import severity_set  # noqa: E402
from assembled.data.perturbations import PERTURBATIONS, sequence  # noqa: E402
from assembled.data.synthetic import SyntheticShapes  # noqa: E402
from assembled.data.transforms import eval_resize  # noqa: E402
from assembled.evaluation.inference import Inference  # noqa: E402
from assembled.evaluation.robustness import CHUNK, JPEG_RELEASED, predict  # noqa: E402
from assembled.models import build_model  # noqa: E402


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, dev) -> float:
    sync(dev)
    t0 = time.perf_counter()
    fn()
    sync(dev)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--size", type=int, default=None)
    p.add_argument("--images", type=int, default=None)
    p.add_argument("--mfr-images", type=int, default=100)
    p.add_argument("--model", default="resnet50d")
    p.add_argument("--width", type=int, default=None)
    args = p.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gpu = dev.type == "cuda"
    size = args.size or (224 if gpu else 64)
    n = args.images or (2000 if gpu else 500)
    width = args.width or (64 if gpu else 16)
    how = Inference(dev, amp=gpu, channels_last=gpu)  # as a GPU run evaluates (bf16, channels_last)
    model = how.prepare(build_model({"name": args.model, "width": width}, num_classes=10))
    images = SyntheticShapes(10, n, size, "val").images.to(dev)
    with torch.no_grad():
        predict(model, images[:CHUNK].float() / 255, how)  # warm-up

        def clean() -> None:
            for s in range(0, n, CHUNK):
                predict(model, images[s : s + CHUNK].float() / 255, how)

        # The box's speed drifts over a run of minutes; one clean pass is timed before every
        # corruption and the median of those is the unit, so numerator and denominator see the
        # same conditions (a best-of-3 taken once at the start overstates every ratio).
        clean_times = [timed(clean, dev)]
        rows = []
        for name in corruptions.names():
            clean_times.append(timed(clean, dev))
            gen = jpeg = all_ = 0.0
            for s in range(0, n, CHUNK):
                x = images[s : s + CHUNK].float() / 255
                severities = corruptions.corrupt_severities(x, name, seed=s)  # as corruption_errors
                for _ in range(5):
                    sync(dev)
                    t0 = time.perf_counter()
                    _, xc = next(severities)
                    sync(dev)
                    tj = time.perf_counter()
                    if severity_set(size) in JPEG_RELEASED:
                        xc = ops.release_jpeg(xc)
                    sync(dev)
                    t1 = time.perf_counter()
                    predict(model, xc, how)
                    sync(dev)
                    gen += t1 - t0
                    jpeg += t1 - tj
                    all_ += time.perf_counter() - t0
            rows.append((name, gen, jpeg, all_))
        t_clean = statistics.median(clean_times)
        print(
            f"device {torch.cuda.get_device_name() if gpu else 'CPU'} ({how.describe()}); {args.model} width {width}; "
            f"{n} images at {size}px"
        )
        print(
            f"clean pass: {t_clean:.3f} s (median of {len(clean_times)} taken between corruptions; "
            f"min {min(clean_times):.3f}, max {max(clean_times):.3f})"
        )
        for name, gen, jpeg, all_ in rows:
            print(
                f"  {name:18s} {all_ / t_clean:7.1f}x clean (generation {gen / t_clean:6.1f}x, "
                f"of which JPEG q85 {jpeg / t_clean:4.1f}x)"
            )
        total_gen, total_jpeg, total_all = (sum(r[i] for r in rows) for i in (1, 2, 3))
        print(
            f"mCE total: {total_all / t_clean:.1f}x a clean pass (75x is the inference floor; "
            f"generation {total_gen / t_clean:.1f}x, of which the released sets' JPEG q85 step "
            f"{total_jpeg / t_clean:.1f}x; released_jpeg: false drops it)"
        )
        m = min(args.mfr_images, n)
        context = SyntheticShapes(10, m, eval_resize(size), "val").images.to(dev).float() / 255
        top = (eval_resize(size) - size) // 2  # the evaluation crop is the context's centre
        sub = (context[:, :, top : top + size, top : top + size] * 255).round().to(torch.uint8)

        def clean_sub() -> None:
            predict(model, sub.float() / 255, how)

        def perturbed(name: str) -> None:
            predict(model, sequence(sub.float() / 255, name, context=context).flatten(0, 1), how)

        sub_times = [timed(clean_sub, dev)]
        costs = []
        for name in PERTURBATIONS:
            sub_times.append(timed(clean_sub, dev))
            costs.append((name, timed(lambda name=name: perturbed(name), dev)))
        t_sub = statistics.median(sub_times)
        for name, t in costs:
            print(f"  {name:18s} {t / t_sub:7.1f}x a clean pass of the {m} mFR images")
        total = sum(t for _, t in costs)
        print(
            f"mFR total on {m} images: {total / t_sub:.1f}x a clean pass of those images "
            f"({total / t_clean:.1f}x the full {n}-image clean pass)"
        )


if __name__ == "__main__":
    main()
