"""ImageNet-P's x264 step (data/video.py): the scripts' ffmpeg settings, a deterministic round
trip, and flip_rates applying it only where the reference saved videos (not CIFAR-10-P)."""

from __future__ import annotations

import torch
from torch import nn

from assembled.data import video
from assembled.data.perturbations import sequence
from assembled.evaluation.robustness import flip_rates


def _smooth(n: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return nn.functional.avg_pool2d(torch.rand(n, 3, size, size, generator=g), 5, 1, 2)


def test_settings_are_the_scripts():
    # make_imagenet_p.py / make_tinyimagenet_p.py: noise "-tune grain -preset veryslow" (CRF 23 by
    # default), every other perturbation "-crf 20 -preset veryslow"
    noise, other = video.x264_options(True), video.x264_options(False)
    assert noise["tune"] == "grain" and "crf" not in noise and noise["preset"] == "veryslow"
    assert other["crf"] == "20" and "tune" not in other and other["preset"] == "veryslow"
    assert video.available()


def test_round_trip_is_deterministic_lossy_and_keeps_full_chroma():
    seq = sequence(_smooth(2, 64), "rotate")
    a, b = video.x264_roundtrip(seq, noise=False), video.x264_roundtrip(seq, noise=False, workers=1)
    assert a.shape == seq.shape and torch.equal(a, b)
    err = (a - seq).abs().mean() * 255
    assert 0.2 < err < 4, err  # CRF 20 on smooth frames: about a level, never untouched
    # ffmpeg encodes RGB PNGs as yuv444p: a 1-px chroma checkerboard survives; 4:2:0 would average it away
    checker = torch.zeros(2, 1, 3, 32, 32)
    checker[..., 0, ::2, ::2] = checker[..., 0, 1::2, 1::2] = 0.8
    checker[..., 2, 1::2, ::2] = checker[..., 2, ::2, 1::2] = 0.8
    out = video.x264_roundtrip(checker.expand(2, 1, 3, 32, 32).contiguous(), noise=False)
    assert (out - checker).abs().mean() * 255 < 12


class _Pixels(nn.Module):
    """Top-5 by the brightest pixels of channel 0: flips whenever the frames change."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0].flatten(1)[:, :50]


def test_flip_rates_encode_only_where_the_reference_saved_videos():
    model = _Pixels()
    for size, encoded in ((64, True), (32, False)):
        u8 = (_smooth(2, size, seed=size) * 255).to(torch.uint8)
        plain = flip_rates(model, u8, torch.device("cpu"), names=["rotate"])
        coded = flip_rates(model, u8, torch.device("cpu"), names=["rotate"], x264=True)
        assert (plain != coded) == encoded, (size, plain, coded)


def test_x264_is_part_of_the_evaluation_identity():
    from assembled.evaluation.suite import EvalConfig

    assert not EvalConfig().perturbation_x264  # slow: opt-in
    assert EvalConfig(perturbation_x264=True).identity() != EvalConfig().identity()


def test_a_profile_asking_for_x264_without_pyav_fails_when_read(tmp_path):
    """Checked where the profile is read (file, profile, key), not after a trial trained."""
    import subprocess
    import sys

    (tmp_path / "p.yaml").write_text("mine:\n  description: x\n  evaluation: {perturbation_x264: true}\n")
    code = (
        "import sys; sys.modules['av'] = None\n"  # PyAV not installed
        "from assembled.ablation.profiles import load_profiles\n"
        "load_profiles('p.yaml')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode != 0
    assert "p.yaml: profile mine: key 'evaluation.perturbation_x264': needs PyAV" in r.stderr, r.stderr[-500:]
