"""The x264 step of ImageNet-P: the reference scripts wrote every sequence as an H.264 video
(``ffmpeg -r 1 -framerate 1 -i img%d.png -vcodec libx264 ... -preset veryslow``), and AlexNet's
flip rates were measured on the decoded frames. ``x264_roundtrip`` encodes and decodes a batch
of sequences the same way through PyAV's bundled libx264 (an optional dependency).

Settings per the scripts: noise sequences ``-tune grain`` (CRF 23, the default), the others
``-crf 20``; RGB PNG input, which ffmpeg encodes as yuv444p; decoded back to RGB (OpenCV's
reader in the reference). One encoder thread per video keeps the output deterministic; videos
run in parallel threads instead. CIFAR-10-P was saved as uint8 arrays: no codec there.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where frames are converted: checking for the codec needs none
    import torch


def x264_options(noise: bool) -> dict[str, str]:
    # asm=0: with x264's assembly the bitstream changed between identical runs (measured: 4 of 5
    # runs of the same 4 videos differed, up to 22 levels); the C path never did (bit-exact by
    # design, 2.3x slower)
    base = {"preset": "veryslow", "threads": "1", "x264-params": "asm=0"}
    return base | ({"tune": "grain"} if noise else {"crf": "20"})


def _roundtrip_one(frames: np.ndarray, options: dict[str, str]) -> np.ndarray:
    """frames: F x H x W x 3 uint8 -> the decoded F x H x W x 3 uint8."""
    import av

    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height = frames.shape[2], frames.shape[1]
    enc.pix_fmt = "yuv444p"
    enc.time_base = enc.framerate = Fraction(1, 1)
    enc.options = options
    packets = []
    for i, f in enumerate(frames):
        # the colour conversion is swscale's (ffmpeg's default BT.601), but the frame handed to x264
        # is built from an array: frames straight from reformat() gave different bitstreams from
        # run to run (measured: 5 of 6 runs differed), these never did
        yuv = av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv444p").to_ndarray()
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(yuv), format="yuv444p")
        frame.pts = i
        packets += enc.encode(frame)
    packets += enc.encode(None)
    dec = av.CodecContext.create("h264", "r")
    dec.thread_count = 1
    out = [d.to_ndarray(format="rgb24") for p in packets for d in dec.decode(p)]
    out += [d.to_ndarray(format="rgb24") for d in dec.decode(None)]
    if len(out) != len(frames):
        raise RuntimeError(f"x264 round trip returned {len(out)} frames for {len(frames)}")
    return np.stack(out)


def available() -> bool:
    try:
        import av
    except ImportError:
        return False
    return "libx264" in av.codecs_available


def x264_roundtrip(seq: torch.Tensor, noise: bool, workers: int | None = None) -> torch.Tensor:
    """``seq``: frames x N x 3 x H x W in [0, 1] (8-bit levels) -> the same after the scripts'
    x264 encode and decode, one video per image."""
    import torch

    if not available():
        raise RuntimeError("the x264 step needs PyAV with libx264: pip install av (or make install)")
    u8 = (seq.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 0, 3, 4, 2).contiguous().cpu().numpy()
    options = x264_options(noise)
    with ThreadPoolExecutor(max_workers=workers or max(1, torch.get_num_threads())) as pool:
        videos = list(pool.map(lambda v: _roundtrip_one(v, options), u8))
    out = torch.from_numpy(np.stack(videos)).permute(1, 0, 4, 2, 3)  # F N 3 H W
    return out.to(seq.device, torch.float32) / 255
