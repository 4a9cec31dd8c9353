"""Inference throughput of every Table 7 row model, FP32 at batch 64 (the paper's protocol) and
bf16, each with its ratio to ResNet-50 measured in the same process (paper: Assemble-ResNet-50
312 / 536 img/s = 0.58 on a P40), and timm's nearest models beside them where timm is installed.

    python benchmarks/models.py [--size 224] [--batch 64] [--repeats 5] [--device auto] [--no-bf16]

On CPU use a smaller --size / --batch; ratios are what compare across machines.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

from assembled.ablation.spec import load_table  # noqa: E402
from assembled.evaluation.throughput import measure_throughput  # noqa: E402
from assembled.models import build_model  # noqa: E402
from assembled.training import resolve_device  # noqa: E402

# timm's nearest models, where they exist
TIMM = {"E0": "resnet50", "E1": "resnet50d", "E6": "skresnet50d", "E10": "resnetblur50d"}
PAPER_R50 = 536.0


def rows() -> list[tuple[str, object, float | None]]:
    """(row id, model config, the paper's img/s) of Table 7's ResNet rows, one per distinct model."""
    _, resolved = load_table(Path(__file__).resolve().parents[1] / "ablations" / "table07.yaml")
    seen, out = set(), []
    for r in resolved:
        key = repr(r.model)
        if r.reference or key in seen:
            continue
        seen.add(key)
        out.append((r.id, r.model, r.paper.throughput))
    return out


def images_per_s(model: torch.nn.Module, size: int, batch: int, repeats: int, device: str, bf16: bool) -> float:
    model = model.to(torch.device(device)).eval()
    if bf16:
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
            return measure_throughput(model, size, batch_size=batch, repeats=repeats, device=device)["images_per_s"]
    return measure_throughput(model, size, batch_size=batch, repeats=repeats, device=device)["images_per_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-bf16", action="store_true", help="FP32 only")
    args = p.parse_args()
    device = str(resolve_device(args.device))
    modes = ["fp32"] + ([] if args.no_bf16 else ["bf16"])
    print(f"device {device}, {args.size} px, batch {args.batch}, median of {args.repeats}")
    base: dict[str, float] = {}
    header = f"{'row':>5} {'model':28}" + "".join(f" {m + ' img/s':>12} {'x R50':>6}" for m in modes) + "  paper x R50"
    print(header)
    for rid, cfg, paper in rows():
        figures = {
            m: images_per_s(build_model(cfg), args.size, args.batch, args.repeats, device, m == "bf16") for m in modes
        }
        base = base or figures  # E0, the first row, is ResNet-50
        name = cfg if isinstance(cfg, str) else cfg.get("name", str(cfg))
        cells = "".join(f" {figures[m]:12.1f} {figures[m] / base[m]:6.2f}" for m in modes)
        print(f"{rid:>5} {str(name)[:28]:28}{cells}  {paper / PAPER_R50 if paper else float('nan'):11.2f}")
    try:
        import timm
    except ImportError:
        print("timm is not installed: no comparison with its models (pip install timm)")
        return
    for rid, name in TIMM.items():
        if name not in timm.list_models():
            continue
        figures = {
            m: images_per_s(timm.create_model(name), args.size, args.batch, args.repeats, device, m == "bf16")
            for m in modes
        }
        cells = "".join(f" {figures[m]:12.1f} {figures[m] / base[m]:6.2f}" for m in modes)
        print(f"{'timm':>5} {name + ' (~' + rid + ')':28}{cells}")


if __name__ == "__main__":
    main()
