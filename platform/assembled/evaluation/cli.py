"""``assembled evaluate CHECKPOINT``: the evaluation suite alone, logged to an MLflow run."""

from __future__ import annotations

import argparse
from pathlib import Path


def load_checkpoint_model(path: Path, model_override: str | None = None):
    import torch

    from ..models import resolve_config
    from ..training import TrainConfig
    from ..training import checkpoint as ckpt
    from ..training.transfer import build_network

    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    state = ckpt.load(path)
    if "model" not in state or "config" not in state:
        raise ValueError(f"{path}: not a checkpoint written by the assembled trainer")
    cfg = TrainConfig.model_validate(state["config"])
    if model_override:
        cfg = cfg.model_copy(update={"model": resolve_config(model_override)})  # model_copy does not validate
    model = build_network(cfg, state["num_classes"])
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        named = cfg.model.name or cfg.model.identity()
        raise ValueError(f"{path}: weights do not fit model {named} ({first[:200]})") from None
    return model, cfg, state["num_classes"], torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..tracking import client, ensure_experiment, open_run, tracking_uri
    from ..tracking.tracked_run import record_evaluation
    from .suite import EvalConfig, evaluate_model

    path = Path(args.checkpoint)
    model, cfg, num_classes, device = load_checkpoint_model(path, args.model)
    ev_cfg = EvalConfig(
        robustness=args.robustness,
        extra_corruptions=args.extra_corruptions,
        imagenet_c=args.imagenet_c,
        mce_images=args.mce_images,
        mfr_images=args.mfr_images,
        released_jpeg=not args.no_released_jpeg,
        perturbation_x264=args.x264,
        scale_corruptions=not args.unscaled_corruptions,
    )
    if args.imagenet_c and not Path(args.imagenet_c).is_dir():
        raise FileNotFoundError(f"ImageNet-C folder does not exist: {args.imagenet_c}")
    uri = tracking_uri()
    run_id = args.run_id
    if run_id is None and path.parent.name and len(path.parent.name) == 32:
        # `assembled train` writes runs/<run id>/last.pt: log beside the training metrics
        try:
            client(uri).get_run(path.parent.name)
            run_id = path.parent.name
        except Exception:
            run_id = None
    if run_id is None:
        ensure_experiment(args.experiment, uri)
        run_id = open_run(cfg, args.experiment, f"evaluate {path.name}", tags={"source": "assembled evaluate"}).run_id
    model.to(device)
    result = evaluate_model(model, cfg, ev_cfg, device, num_classes, progress=True)
    record_evaluation(uri, run_id, result.metrics, result.tags, end=run_id not in (args.run_id, path.parent.name))
    keys = ["top1", "mce", "mfr", "throughput", "throughput_ratio_r50", "macs", "params"]
    print(f"MLflow run {run_id}: " + ", ".join(f"{k}={result.metrics[k]:.4g}" for k in keys if k in result.metrics))
    return 0


def register(sub) -> None:
    s = sub.add_parser("evaluate", help="top-1, mCE, mFR, throughput, MACs/params of a checkpoint")
    s.add_argument("checkpoint", help="a checkpoint written by `assembled train` or an ablation trial (last.pt)")
    s.add_argument("--run-id", help="MLflow run to log into (default: the run that wrote it, else a new one)")
    s.add_argument("--experiment", default="evaluate", help="MLflow experiment of a new run")
    s.add_argument("--model", help="build this model instead of the checkpoint's own")
    s.add_argument(
        "--robustness", choices=["none", "quick", "full"], default="quick", help="depth of the mCE / mFR passes"
    )
    s.add_argument(
        "--extra-corruptions", action="store_true", help="mCE over the official code's 19 corruptions (the paper's)"
    )
    s.add_argument(
        "--unscaled-corruptions",
        action="store_true",
        help="keep the 224-px spatial constants at other sizes, as the official generator did at 256 px",
    )
    s.add_argument("--imagenet-c", help="read a pre-generated ImageNet-C folder instead of generating")
    s.add_argument("--mce-images", type=int, help="evaluation images corrupted for mCE (default: by --robustness)")
    s.add_argument("--mfr-images", type=int, help="images turned into perturbation sequences for mFR")
    s.add_argument(
        "--no-released-jpeg", action="store_true", help="skip the JPEG q85 step of the released 224/64-px ImageNet-C"
    )
    s.add_argument(
        "--x264", action="store_true", help="x264-encode the 224/64-px perturbation sequences as ImageNet-P (slow)"
    )
    s.set_defaults(fn=cmd_evaluate)
