"""Ablation tables on a real local Ray with a real SQLite MLflow store."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from assembled.ablation.profiles import load_profiles
from assembled.ablation.runner import run_ablation
from assembled.ablation.spec import load_table
from assembled.config_io import ConfigError

from .conftest import ROOT, children, cli


@pytest.mark.slow
def test_table6_smoke_then_resume(ablation_env):
    tmp, root, client = ablation_env
    result = run_ablation("6", "smoke", workdir=tmp / "runs")
    assert not result.failed and sorted(result.ran) == ["T0", "T1", "T2", "T3", "T4", "T5"]
    runs = children(client, "table06")
    assert len(runs) == 6
    for r in runs:
        assert r.info.status == "FINISHED"
        assert r.data.tags["mlflow.parentRunId"] == result.parent_run_id
        for key in ("top1", "mce", "mfr", "throughput", "macs", "params"):
            assert key in r.data.metrics, (r.data.tags["row"], key)
    assert set(result.summary["row"]) == {"T0", "T1", "T2", "T3", "T4", "T5"}
    assert (result.summary["paper_top1"] > 76).all() and result.summary["top1"].notna().all()
    assert (tmp / "runs" / "table06" / "summary.csv").exists()
    parent_arts = [a.path for a in client.list_artifacts(result.parent_run_id)]
    assert "summary.csv" in parent_arts
    again = run_ablation("6", "smoke", workdir=tmp / "runs")
    assert again.ran == [] and len(again.skipped) == 6
    assert len(children(client, "table06")) == 6
    # other evaluation settings: finished rows are not comparable any more and run again
    assert {r.data.tags["eval_hash"] for r in runs} == {
        load_profiles(root / "profiles.yaml")["smoke"].evaluation.identity()
    }
    shutil.copy(ROOT / "ablations" / "table06.yaml", root / "table06.yaml")
    text = (root / "profiles.yaml").read_text()
    assert "mce_images: 32," in text
    (root / "profiles.yaml").write_text(text.replace("mce_images: 32,", "mce_images: 40,", 1))
    changed = run_ablation("6", "smoke", workdir=tmp / "runs", ablations_dir=root, rows=["T0"])
    assert changed.ran == ["T0"] and changed.skipped == []
    # T0's trial directory still holds its run and final checkpoint: it is re-evaluated into the
    # same run, which now carries the new identity; the other rows keep theirs
    new_id = load_profiles(root / "profiles.yaml")["smoke"].evaluation.identity()
    after = {r.data.tags["row"]: r.data.tags["eval_hash"] for r in children(client, "table06")}
    assert len(after) == 6 and after.pop("T0") == new_id and new_id not in after.values()


KD_TABLE = """
table: kd
title: KD teacher runs once
rows:
  - {id: T, model: {name: resnet50, width: 8, layers: [1, 1, 1, 1]}, epochs: 120, input_size: 224}
  - {id: S1, model: resnet50d, kd: {row: T}, epochs: 120, input_size: 224}
  - {id: S2, base: S1, reg: {kd_temperature: 2.0}}
"""


@pytest.mark.slow
def test_kd_teacher_once_and_retry_continues_run(ablation_env, monkeypatch):
    tmp, root, client = ablation_env
    (root / "kd.yaml").write_text(KD_TABLE)
    # the worker of one trial dies once at the end of epoch 1: Ray retries it from its checkpoint
    monkeypatch.setenv("ASSEMBLED_FAIL_ONCE_AT_EPOCH", "1")
    result = run_ablation(str(root / "kd.yaml"), "smoke", ablations_dir=root, workdir=tmp / "runs")
    assert not result.failed, result.failed
    assert sorted(result.ran) == ["S1", "S2", "T"]
    assert result.logits_computed == 1
    runs = children(client, "kd")
    by_row: dict[str, list] = {}
    for r in runs:
        by_row.setdefault(r.data.tags["row"], []).append(r)
    assert {k: len(v) for k, v in by_row.items()} == {"T": 1, "S1": 1, "S2": 1}
    teacher = by_row["T"][0]
    logits = client.list_artifacts(teacher.info.run_id, "teacher_logits")
    assert len(logits) == 1
    for row in ("T", "S1", "S2"):
        assert by_row[row][0].info.status == "FINISHED"
        # the retried trial continued its own run: one value per epoch step
        assert [m.step for m in client.get_metric_history(by_row[row][0].info.run_id, "loss")] == [1]
    # students read the teacher's logits; a second invocation computes nothing again
    again = run_ablation(str(root / "kd.yaml"), "smoke", ablations_dir=root, workdir=tmp / "runs", rows=["S1"])
    assert again.ran == [] and again.logits_computed == 0


BAD = {
    "typo in a key": ("rows:\n  - {id: A, model: resnet50, epoch: 3}\n", "row A: key 'epoch': Extra inputs"),
    "unknown technique": (
        "rows:\n  - {id: A, model: {name: resnet50, mixstyle: true}}\n",
        "row A: key 'model.mixstyle'",
    ),
    "unknown model": ("rows:\n  - {id: A, model: resnet51}\n", "row A: key 'model': unknown model 'resnet51'"),
    "duplicate row": (
        "rows:\n  - {id: A, model: resnet50}\n  - {id: A, model: resnet50d}\n",
        "row A: key 'id': row id A is used twice",
    ),
    "missing base row": ("rows:\n  - {id: A, base: Z}\n", "row A: key 'base': row Z is not in this table"),
    "missing teacher row": (
        "rows:\n  - {id: A, model: resnet50, kd: {row: Q}}\n",
        "row A: key 'kd.row': teacher row Q is not in this table",
    ),
    # one name for the KD temperature, from the table to a search's best.yaml
    "the temperature under kd": (
        "rows:\n  - {id: T, model: resnet50}\n  - {id: A, model: resnet50d, kd: {row: T, temperature: 2}}\n",
        "row A: key 'kd': the KD temperature is the row's reg.kd_temperature",
    ),
    "a temperature without a teacher": (
        "rows:\n  - {id: A, model: resnet50, reg: {kd_temperature: 2}}\n",
        "row A: key 'reg.kd_temperature': the row has no teacher",
    ),
    "a teacher at temperature 0": (
        "rows:\n  - {id: T, model: resnet50}\n  - {id: A, model: resnet50d, kd: {row: T}, reg: {kd_temperature: 0}}\n",
        "row A: key 'reg.kd_temperature': a row with a kd: teacher distils at a temperature > 0",
    ),
    "judged against a missing row": (
        "rows:\n  - {id: A, model: resnet50}\n  - {id: B, base: A, vs: Z}\n",
        "row B: key 'vs': 'Z' is not another row of this table",
    ),
    "bad regulariser value": (
        "rows:\n  - {id: A, model: resnet50, reg: {label_smoothing: 2}}\n",
        "row A: key 'reg.label_smoothing'",
    ),
    # optimiser overrides are read in the same place, with the file (they once were checked only
    # when the plan built each trial's config, without it)
    "typo under optim": (
        "rows:\n  - {id: A, model: resnet50, optim: {bacth_size: 128}}\n",
        "row A: key 'optim.bacth_size': Extra inputs",
    ),
    "bad optimiser value in an inheriting row": (
        "rows:\n  - {id: A, model: resnet50}\n  - {id: B, base: A, optim: {batch_size: fast}}\n",
        "row B: key 'optim.batch_size'",
    ),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_schema_errors_name_file_row_key(tmp_path, case):
    body, expected = BAD[case]
    path = tmp_path / "bad.yaml"
    path.write_text("table: 99\ntitle: bad\n" + body)
    with pytest.raises(ConfigError) as e:
        load_table(path)
    assert str(path) in str(e.value) and expected in str(e.value), str(e.value)


BAD_PROFILE = {
    "typo under optim": ("optim: {bacth_size: 64}", "profile p: key 'optim.bacth_size': Extra inputs"),
    "bad optimiser value": ("optim: {base_lr: -1}", "profile p: key 'optim.base_lr'"),
    "typo under data": ("data: {kind: synthetic, train_sise: 10}", "profile p: key 'data.train_sise'"),
    "typo under resnet": ("resnet: {widht: 8}", "profile p: key 'resnet.widht'"),
    "typo in a transfer dataset": ("datasets: {cub200: {kind: cub200, pth: /x}}", "key 'datasets.cub200.pth'"),
}


@pytest.mark.parametrize("case", list(BAD_PROFILE), ids=list(BAD_PROFILE))
def test_profile_errors_name_file_profile_key(tmp_path, case):
    """A profile's partial sub-configs are checked where profiles.yaml is read, in the one
    ``file: profile: key`` form (they were first seen when a row's config was built, without
    the file)."""
    body, expected = BAD_PROFILE[case]
    path = tmp_path / "profiles.yaml"
    path.write_text(f"p:\n  {body}\n")
    with pytest.raises(ConfigError) as e:
        load_profiles(path)
    assert str(path) in str(e.value) and expected in str(e.value), str(e.value)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7, 8, 9])
def test_shipped_tables_validate(n):
    table, rows = load_table(ROOT / "ablations" / f"table{n:02d}.yaml")
    assert rows and all(r.paper.top1 for r in rows if not r.id.startswith("Teacher"))


@pytest.mark.parametrize("n", [11, 13])
def test_transfer_tables_judge_rows_within_their_dataset(n):
    from assembled.ablation.summary import comparisons

    table, rows = load_table(ROOT / "ablations" / f"table{n}.yaml")
    manifest = {"kind": table.kind, "rows": [{"id": r.id, "base": r.base, "vs": r.vs} for r in rows]}
    judged = comparisons(manifest)
    dataset = {r.id: r.dataset for r in rows}
    assert all(dataset[row] == dataset[against] for row, against in judged.items()), judged
    assert sorted(judged) == sorted(r.id for r in rows if r.id.endswith("_asm"))


def _bound_trials(table_text: str, tmp_path, profile: str = "smoke"):
    from assembled.ablation.plan import build_plan

    path = tmp_path / "kd.yaml"
    path.write_text(table_text)
    return build_plan(str(path), profile).rows


def test_student_identity_includes_its_teacher(tmp_path):
    before = _bound_trials(KD_TABLE, tmp_path)
    after = _bound_trials(
        KD_TABLE.replace("input_size: 224}", "input_size: 224, reg: {label_smoothing: 0.1}}", 1), tmp_path
    )
    assert before["T"].cfg.config_hash() != after["T"].cfg.config_hash()
    # only the teacher changed, yet both students are new configurations (their finished runs do not count)
    for s in ("S1", "S2"):
        assert before[s].cfg.reg.teacher == before["T"].cfg.config_hash()
        assert before[s].cfg.config_hash() != after[s].cfg.config_hash()


def test_profile_teacher_substitute_must_be_a_row(ablation_env):
    tmp, root, _ = ablation_env
    (root / "kd.yaml").write_text(KD_TABLE)
    (root / "profiles.yaml").write_text(
        (root / "profiles.yaml").read_text().replace("  teachers: {EffB7: E6}\n", "  teachers: {T: E6}\n", 1)
    )
    with pytest.raises(ConfigError) as e:
        run_ablation(str(root / "kd.yaml"), "smoke", ablations_dir=root, workdir=tmp / "runs")
    assert "profiles.yaml" in str(e.value) and "teachers.T" in str(e.value) and "row E6" in str(e.value)
    assert not (tmp / "runs").exists()  # nothing ran, nothing was created


TWO_ROWS = """
table: cluster
title: Two rows on an existing cluster
rows:
  - {id: A, model: resnet50, epochs: 120, input_size: 224}
  - {id: B, base: A, model: resnet50d}
"""


@pytest.mark.slow
@pytest.mark.serial  # it ends with `ray stop`, which stops every Ray of the user: alone
def test_existing_cluster_head_and_worker(ablation_env):
    """`--address` runs the rows on a cluster started by `ray start` (head + worker on 127.0.0.1)
    and leaves it running. Ray 2.60's token auth is shared through RAY_AUTH_TOKEN, as on a real
    cluster; the driver is the console script, since a process keeps the first token it used."""
    tmp, root, client = ablation_env
    (root / "cluster.yaml").write_text(TWO_ROWS)
    bindir = Path(sys.executable).parent
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    address = f"127.0.0.1:{port}"
    head = [str(bindir / "ray"), "start", "--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false"]
    head.append(f"--temp-dir={os.environ['ASSEMBLED_RAY_TMP']}")
    try:
        subprocess.run(head, env=env, check=True, capture_output=True)
        worker = [str(bindir / "ray"), "start", f"--address={address}", "--num-cpus=1"]
        subprocess.run(worker, env=env, check=True, capture_output=True)
        done = cli("ablation", str(root / "cluster.yaml"), "--profile", "smoke", "--address", address, cwd=tmp, env=env)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert {r.data.tags["row"]: r.info.status for r in children(client, "cluster")} == {
            "A": "FINISHED",
            "B": "FINISHED",
        }
        # the command disconnected and left the user's cluster, both nodes, up
        probe = f"import ray; ray.init(address='{address}'); print(sum(n['Alive'] for n in ray.nodes()))"
        alive = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
        assert alive.stdout.strip().splitlines()[-1] == "2", alive.stderr[-2000:]
    finally:
        subprocess.run([str(bindir / "ray"), "stop", "--force"], env=env, capture_output=True)


OTHER_TABLE = """
table: other
title: holds a teacher
rows:
  - {id: T, model: {name: resnet50, width: 8, layers: [1, 1, 1, 1]}, epochs: 120, input_size: 224}
"""
EXTERNAL_KD = """
table: ext
title: teachers from another table and from a model config
rows:
  - {id: S1, model: resnet50d, kd: {row: "other.yaml:T"}, epochs: 120, input_size: 224}
  - {id: S2, base: S1, kd: {model: {name: se_resnet50d}}}
  - {id: S3, base: S1, kd: {model: {name: se_resnet50d}}, reg: {kd_temperature: 2.0}}
"""


@pytest.mark.slow
def test_teachers_from_another_table_and_a_model_config(ablation_env):
    tmp, root, client = ablation_env
    (root / "other.yaml").write_text(OTHER_TABLE)
    (root / "ext.yaml").write_text(EXTERNAL_KD)
    result = run_ablation(str(root / "ext.yaml"), "smoke", ablations_dir=root, workdir=tmp / "runs", executor="local")
    assert not result.failed, result.failed
    teachers = sorted(r for r in result.ran if not r.startswith("S"))
    assert len(teachers) == 2 and teachers[0] == "other:T" and teachers[1].startswith("teacher-")
    assert result.logits_computed == 2  # S2 and S3 share the model-config teacher's logits
    kd = {r.data.tags["row"]: r.data.tags.get("kd_teacher") for r in children(client, "ext")}
    assert kd["S1"] == "other:T" and kd["S2"] == kd["S3"] == teachers[1]


@pytest.mark.parametrize(
    "kd,expected",
    [
        ('{row: "missing.yaml:T"}', "teacher table"),
        ('{row: "other.yaml:Nope"}', "has no row Nope"),
        ("{model: {name: resnet50, widht: 3}}", "kd.model"),
    ],
)
def test_external_teacher_errors_name_row_and_key(tmp_path, kd, expected):
    from assembled.ablation.external_teachers import external_teachers

    (tmp_path / "other.yaml").write_text(OTHER_TABLE)
    path = tmp_path / "bad.yaml"
    path.write_text(f"table: b\ntitle: b\nrows:\n  - {{id: S, model: resnet50, kd: {kd}}}\n")
    _, rows = load_table(path)
    with pytest.raises(ConfigError) as e:
        external_teachers(path, rows, tmp_path)
    assert str(path) in str(e.value) and "row S" in str(e.value) and expected in str(e.value), str(e.value)
