"""The GPU suite: every figure a developer lent a GPU should bring back, in one call of at most
~8 minutes (benchmarks/gpu_suite.sh sets up and calls this; benchmarks/README.md says how).

    python benchmarks/gpu_suite.py --out OUT [--budget 450] [--cpu] [--data DIR]

Steps, each in a process of its own with the time left (a step that would start with too
little left is skipped, saying so; one that runs out is stopped and keeps what it printed):

  env          versions, device, a bf16 matmul figure
  train-r50    trainer vs a bare fwd+bwd+step loop, R50, bf16 channels_last, batch 256, 224 px,
               data held on the device (real CIFAR-10 crops); peak memory; data path alone
  train-asm    the same for Assemble-ResNet-50
  inference    inference img/s of every Table 7 network, FP32 batch 64 (the paper's Table 14
               protocol) and bf16, as ratios to R50, beside timm's nearest models
  cifar        a short real CIFAR-10 training: top-1 per epoch, img/s
  syncs        host syncs per training step (torch.cuda.set_sync_debug_mode)
  syncs-kd     the same with knowledge distillation (the teacher table's gather)
  data-path    the input paths alone (files, cache, device, device + AutoAugment)
  robustness   mCE + mFR time as a multiple of one clean pass
  decode       ImageNet-size JPEG decode: PIL and torchvision on a core, nvjpeg batched (DALI if installed)
  compiled     train-r50 with torch.compile (inductor; eager on --cpu): compiled in the first epoch,
               the second timed

``--cpu`` runs every step at toy sizes on the CPU (``make test`` does, so the suite cannot rot).
Prints one table; each step's output goes to OUT/<step>.txt and the table to OUT/summary.txt and
OUT/summary.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Step:
    name: str
    script: str
    gpu_args: tuple[str, ...]
    cpu_args: tuple[str, ...]
    least: float  # seconds below which the step is not started (GPU; a fifth of it on --cpu)


def steps(data: str) -> list[Step]:
    d = ("--data", data)
    train_gpu = ("--width", "64", "--size", "224", "--batch", "256", "--steps", "20", *d)
    train_cpu = ("--width", "8", "--size", "32", "--batch", "16", "--steps", "3", *d)
    small = ("--per-class", "500", "--val-per-class", "100")
    tiny = ("--per-class", "20", "--val-per-class", "10", "--batch", "32", "--width", "8")
    return [
        Step("env", "gpu_steps.py", ("env",), ("env", "--matmul", "256"), 10),
        Step("train-r50", "train_step.py", ("--model", "resnet50", *train_gpu),
             ("--model", "resnet50", *train_cpu), 60),
        Step("train-asm", "train_step.py", ("--model", "assemble_resnet50", *train_gpu),
             ("--model", "assemble_resnet50", *train_cpu), 60),
        Step("inference", "models.py", ("--size", "224", "--batch", "64", "--repeats", "5"),
             ("--size", "32", "--batch", "4", "--repeats", "2", "--no-bf16"), 45),
        Step("cifar", "gpu_steps.py", ("cifar", "--epochs", "3", *d),
             ("cifar", "--epochs", "1", "--batch", "64", "--width", "8", "--per-class", "50",
              "--val-per-class", "20", *d), 45),
        Step("syncs", "gpu_steps.py", ("syncs", *small, *d), ("syncs", *tiny, *d), 30),
        Step("syncs-kd", "gpu_steps.py", ("syncs", "--kd", *small, *d), ("syncs", "--kd", *tiny, *d), 30),
        Step("data-path", "data_path.py", ("--size", "224", "--batch", "256", "--steps", "30", "--workers", "8", *d),
             ("--size", "32", "--batch", "32", "--steps", "5", *d), 30),
        Step("robustness", "evaluation.py", ("--size", "224", "--images", "64", "--mfr-images", "8"),
             ("--size", "32", "--images", "16", "--mfr-images", "2", "--width", "8"), 60),
        Step("decode", "decode.py", ("--images", "256", "--rounds", "3"), ("--images", "16", "--rounds", "1"), 20),
        Step("compiled", "train_step.py", ("--model", "resnet50", "--compile", "inductor", *train_gpu),
             ("--model", "resnet50", "--compile", "eager", *train_cpu), 120),
    ]  # fmt: skip


@dataclass
class Outcome:
    step: str
    status: str  # ok | failed (rc N) | stopped after N s | skipped: why
    seconds: float = 0.0
    lines: list[str] = field(default_factory=list)


NOISE = ("Warning", "warn(", "INFO", "  warnings.warn", "UserWarning")


def run_step(step: Step, cpu: bool, seconds: float, out: Path) -> Outcome:
    args = step.cpu_args if cpu else step.gpu_args
    cmd = [sys.executable, "-u", str(HERE / step.script), *args]
    log = out / f"{step.name}.txt"
    t0 = time.perf_counter()
    with open(log, "w") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        try:
            rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=seconds).returncode
            status = "ok" if rc == 0 else f"failed (rc {rc})"
        except subprocess.TimeoutExpired:
            status = f"stopped after {seconds:.0f} s (what it printed is kept)"
    text = log.read_text(errors="replace").splitlines()[1:]
    lines = [x.rstrip() for x in text if x.strip() and not any(n in x for n in NOISE)]
    if status.startswith("failed"):
        lines = lines[-6:]  # the error's tail
    return Outcome(step.name, status, time.perf_counter() - t0, lines)


def table(outcomes: list[Outcome], total: float, budget: float, cpu: bool) -> str:
    mode = "CPU reduced mode" if cpu else "GPU"
    rows = [f"GPU suite ({mode}): {total:.0f} s of a {budget:.0f}-s budget"]
    rows.append(f"{'step':12} {'status':10} {'s':>6}  figures")
    for o in outcomes:
        head = o.status if len(o.status) <= 10 else o.status.split(" ")[0]
        rows.append(f"{o.step:12} {head:10} {o.seconds:6.1f}  {o.lines[0] if o.lines else ''}")
        if head != o.status:
            rows.append(f"{'':30}({o.status})")
        rows += [f"{'':30}{x}" for x in o.lines[1:]]
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.environ.get("OUT", "gpu-suite-out"))
    p.add_argument("--budget", type=float, default=450.0, help="seconds for all steps (default 450: 7.5 min)")
    p.add_argument("--cpu", action="store_true", help="toy sizes on the CPU (what make test runs)")
    p.add_argument("--data", default=None, help="CIFAR-10 folder or archives (default: .gpu/cifar10, else ../shared)")
    p.add_argument("--only", nargs="*", default=None, help="run these steps only")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    candidates = (HERE.parent / ".gpu" / "cifar10", HERE.parents[1] / "shared" / "data" / "cifar10")
    data = args.data or next((str(c) for c in candidates if c.exists()), "")
    start = time.perf_counter()
    outcomes = []
    for step in steps(data):
        if args.only is not None and step.name not in args.only:
            continue
        left = args.budget - (time.perf_counter() - start)
        least = step.least / 5 if args.cpu else step.least
        needs_data = "--data" in (step.cpu_args if args.cpu else step.gpu_args)
        if needs_data and not data:
            outcomes.append(Outcome(step.name, "skipped: no CIFAR-10 (benchmarks/gpu_bundle.sh, or --data)"))
        elif left < least:
            outcomes.append(Outcome(step.name, f"skipped: {left:.0f} s left, the step needs ~{least:.0f}"))
        else:
            outcomes.append(run_step(step, args.cpu, left, out))
        print(f"[gpu suite] {step.name}: {outcomes[-1].status} ({outcomes[-1].seconds:.0f} s)", flush=True)
    text = table(outcomes, time.perf_counter() - start, args.budget, args.cpu)
    print(text)
    (out / "summary.txt").write_text(text + "\n")
    (out / "summary.json").write_text(json.dumps([asdict(o) for o in outcomes], indent=1))
    sys.exit(0 if all(o.status == "ok" or o.status.startswith(("skipped", "stopped")) for o in outcomes) else 1)


if __name__ == "__main__":
    main()
