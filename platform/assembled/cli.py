"""assembled: train, evaluate and ablate the techniques of Assemble-ResNet; results in MLflow.

Start with `assembled tables`, `assembled plan 7`, then `assembled ablation 7` and
`assembled report 7`; `make ui` and `make dashboard` show the runs."""

# Each sub-command imports what it needs when it runs, so --help, `models` and `tables` answer
# without importing torch, Ray or MLflow.

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from .config_io import ConfigError
from .redact import redact


def cmd_models(args: argparse.Namespace) -> int:
    from .models import default_input_size, list_models

    for name in list_models():
        print(f"{name:22s} input {default_input_size(name)}")
    return 0


def _row_model(name: str) -> tuple[object, int | None]:
    """``table02:C2`` (or ``2:C2``, ``mine.yaml:A``) -> that row's model and evaluation size."""
    from .ablation.plan import ROOT
    from .ablation.spec import load_table, table_path

    spec, row_id = name.rsplit(":", 1)
    path = table_path(spec, ROOT / "ablations")
    _, rows = load_table(path)
    row = next((r for r in rows if r.id == row_id), None)
    if row is None:
        raise ConfigError(f"{path}: no row {row_id}; the table has {', '.join(r.id for r in rows)}")
    return row.model, row.input_size


def cmd_profile(args: argparse.Namespace) -> int:
    from .evaluation import count_macs, count_params
    from .models import build_model, default_input_size

    spec, row_size = _row_model(args.name) if ":" in args.name else (args.name, None)
    size = args.input_size or row_size or default_input_size(spec)
    model = build_model(spec, num_classes=args.num_classes)
    out = {"model": args.name, "input_size": size, "params": count_params(model), "macs": count_macs(model, size)}
    if args.throughput:
        from .evaluation.throughput import measure_throughput

        out |= measure_throughput(model, size, batch_size=args.batch_size, device=args.device)
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{args.name} @ {size}px: {out['params'] / 1e6:.2f}M params, {out['macs'] / 1e9:.3f} GMACs")
        if "images_per_s" in out:
            print(f"throughput: {out['images_per_s']:.1f} images/s (batch {args.batch_size}, {out['device']})")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .config_io import apply_overrides, read_yaml, validate
    from .tracking import open_run, train_tracked
    from .training import TrainConfig
    from .training.config import check_switches

    data = apply_overrides(read_yaml(args.config), args.set or [])
    cfg = validate(TrainConfig, data, str(args.config))
    try:
        check_switches(cfg.model, set(data.get("reg") or {}))
    except ValueError as e:
        raise ConfigError(f"{args.config}: {e}") from None
    run = open_run(cfg, args.experiment, args.run_name or Path(args.config).stem, tags={"source": "assembled train"})
    workdir = Path(args.workdir or Path("runs") / run.run_id)
    print(f"MLflow run {run.run_id} in experiment '{args.experiment}' ({redact(run.uri)})")
    after = None
    if args.evaluate:
        from .evaluation.suite import suite_after_training

        after = suite_after_training(cfg, args.robustness)
    result = train_tracked(cfg, run, workdir, after_training=after)
    labels = {"top1": "top-1 {:.2f}%", "top5": "top-5 {:.2f}%", "loss": "train loss {:.4f}", "mce": "mCE {:.2f}"}
    labels |= {"mfr": "mFR {:.2f}", "throughput": "{:.0f} img/s"}
    line = ", ".join(fmt.format(result.metrics[k]) for k, fmt in labels.items() if k in result.metrics)
    from .tracking.ui import run_url

    if run.uri.startswith(("http://", "https://")):
        page = run_url(run.uri, run.experiment_id, run.run_id)
    else:
        page = run_url("http://127.0.0.1:5000", run.experiment_id, run.run_id) + " (after `make ui`)"
    print(f"finished: {line}\ncheckpoint {result.checkpoint}\nMLflow run {run.run_id} in {redact(run.uri)}: {page}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="assembled", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("models", help="list registered model names")
    s.set_defaults(fn=cmd_models)

    s = sub.add_parser("profile", help="params and MACs (and throughput) of a model")
    s.add_argument("name", help="a registered name (assembled models) or a table row, e.g. table02:C2")
    s.add_argument("--input-size", type=int, help="input resolution (default: the model's or the row's)")
    s.add_argument("--num-classes", type=int, default=1000, help="classifier outputs")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--throughput", action="store_true", help="also time inference (batch 64, FP32)")
    s.add_argument("--batch-size", type=int, default=64, help="throughput batch")
    s.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    s.set_defaults(fn=cmd_profile)

    s = sub.add_parser("train", help="train one configuration, tracked in MLflow")
    s.add_argument("config", type=Path, help="a TrainConfig YAML (see ablations/train/)")
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a dotted key (repeatable)")
    s.add_argument("--experiment", default="train", help="MLflow experiment")
    s.add_argument("--run-name", help="MLflow run name (default: the config file's name)")
    s.add_argument("--workdir", help="checkpoint folder (default runs/<run id>)")
    s.add_argument("--evaluate", action="store_true", help="run the evaluation suite after training")
    s.add_argument(
        "--robustness", choices=["none", "quick", "full"], default="quick", help="depth of the mCE / mFR passes"
    )
    s.set_defaults(fn=cmd_train)

    for register in _extensions():
        register(sub)
    return p


def _extensions():
    """Sub-commands that live beside their subsystem."""
    from .cli_ext import REGISTRARS

    return REGISTRARS


def _exit_after_interrupt(code: int) -> int:
    """Leave at once: every run is recorded KILLED and Ray is shut down by now, but an
    interrupted Tune ``fit`` can leave threads behind that keep the interpreter from exiting
    (seen intermittently after Ctrl-C). ``main`` is the console script's; nothing calls it
    in-process."""

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    import signal

    if hasattr(signal, "SIGPIPE"):  # `assembled plan 7 | head` ends quietly, as other commands do
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    # MLflow's tqdm "Downloading artifacts" bars (checkpoints, logits, manifests) are noise here;
    # Ray workers of a local Ray inherit this environment
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # nor MLflow's own "View run at <tracking URL>" lines: the platform prints its links, with a
    # URL's password masked, where MLflow would print it whole
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    from .tracking import s3_compat

    s3_compat.apply()  # uploads that MinIO and Ceph radosgw accept
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    from .runner.interrupts import Interrupted
    from .tracking.health import StorageError, disk_problem

    try:
        return args.fn(args)
    except Interrupted as e:
        print(f"interrupted ({e}): run the same command to resume", file=sys.stderr)
        return _exit_after_interrupt(e.exit_code)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except StorageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command to resume", file=sys.stderr)
        return 130
    except Exception as e:
        problem = disk_problem(e)  # a full or read-only disk: one line, not a library's traceback
        if problem is None:
            raise
        print(f"error: {problem}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
