"""JPEG decode rates for ImageNet-size images, side by side in one run: what an ImageNet loader
would spend per image, and whether decoding on the GPU is worth it (issue 24 asks to choose
between DataLoader workers, torchvision's ``decode_jpeg(device='cuda')`` and DALI by measurement).

    python benchmarks/decode.py [--images 128] [--width 500] [--height 375] [--batch 64]

- PIL: ``Image.open(...).convert('RGB')``, what the folder loader does per image (one core);
- torchvision CPU: ``decode_jpeg`` on one core;
- torchvision CUDA: ``decode_jpeg(list, device='cuda')`` in batches (nvjpeg), where there is a GPU;
- DALI: ``fn.decoders.image`` (mixed), where nvidia-dali is installed.

The images are smooth random fields encoded at quality 90 (an ImageNet JPEG is ~500 x 375,
quality ~90). Prints images/s and each path's ratio to PIL; a GPU path's figure includes the
host-to-device copy of the compressed bytes.
"""

from __future__ import annotations

import argparse
import io
import time

import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from torchvision.io import decode_jpeg, encode_jpeg


def jpegs(n: int, width: int, height: int) -> list[torch.Tensor]:
    """``n`` JPEG byte tensors of smooth colour fields (upsampled noise: photo-like entropy)."""
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        low = torch.rand(1, 3, height // 16, width // 16, generator=g)
        img = F.interpolate(low, size=(height, width), mode="bicubic", align_corners=False)
        img = img + 0.05 * torch.randn(img.shape, generator=g)
        u8 = (img.clamp(0, 1)[0] * 255).round().to(torch.uint8)
        out.append(encode_jpeg(u8, quality=90))
    return out


def timed(fn, rounds: int, cuda: bool) -> float:
    fn()  # warm-up (nvjpeg handles, caches)
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(rounds):
        fn()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--images", type=int, default=128)
    p.add_argument("--width", type=int, default=500)
    p.add_argument("--height", type=int, default=375)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(1)
    data = jpegs(args.images, args.width, args.height)
    raw = [bytes(d.numpy()) for d in data]
    kb = sum(len(r) for r in raw) / len(raw) / 1024
    n = args.images * args.rounds
    rates: dict[str, float] = {}
    rates["PIL (1 core)"] = n / timed(lambda: [Image.open(io.BytesIO(r)).convert("RGB").load() for r in raw],
                                      args.rounds, False)  # fmt: skip
    rates["torchvision CPU (1 core)"] = n / timed(lambda: [decode_jpeg(d) for d in data], args.rounds, False)
    cuda = torch.cuda.is_available()
    if cuda:

        def gpu() -> None:
            for i in range(0, len(data), args.batch):
                decode_jpeg(data[i : i + args.batch], device="cuda")

        rates[f"torchvision CUDA (batch {args.batch})"] = n / timed(gpu, args.rounds, True)
    try:
        rates.update(_dali(raw, args.batch, args.rounds))
    except ImportError:
        pass
    where = torch.cuda.get_device_name() if cuda else "no GPU"
    print(f"{args.images} JPEGs of {args.width}x{args.height} px, {kb:.0f} KiB each; torchvision "
          f"{torchvision.__version__}; {where}")  # fmt: skip
    first = next(iter(rates.values()))
    for name, r in rates.items():
        print(f"  decode {name:32s} {r:9.0f} images/s  {r / first:6.2f}x PIL")
    if not cuda:
        print("  decode on the GPU: skipped (no CUDA device)")


def _dali(raw: list[bytes], batch: int, rounds: int) -> dict[str, float]:
    """DALI's mixed (nvjpeg) decoder, where nvidia-dali is installed and there is a GPU."""
    import numpy as np
    from nvidia.dali import fn, pipeline_def

    if not torch.cuda.is_available():
        return {}
    arrays = [np.frombuffer(r, dtype=np.uint8) for r in raw]

    @pipeline_def(batch_size=batch, num_threads=4, device_id=0)
    def pipe():
        return fn.decoders.image(fn.external_source(source=lambda: arrays[:batch], batch=True), device="mixed")

    pl = pipe()
    pl.build()
    steps = max(1, len(raw) // batch) * rounds
    seconds = timed(lambda: [pl.run() for _ in range(steps)], 1, True)
    return {f"DALI mixed (batch {batch})": steps * batch / seconds}


if __name__ == "__main__":
    main()
