#!/usr/bin/env bash
# The GPU suite in one call (benchmarks/README.md): on a lent GPU machine, from the repository
# root, with .gpu/ carried (bash benchmarks/gpu_bundle.sh made it):
#   bash benchmarks/gpu_suite.sh            # ~7.5 min, figures in $OUT (default gpu-suite-out/)
#   bash benchmarks/gpu_suite.sh --cpu      # toy sizes on the CPU (make test runs this)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$(command -v python3 || command -v python)}
[ -x .venv/bin/python ] && [ -z "${GPU_SUITE_SYSTEM_PYTHON:-}" ] && PY=.venv/bin/python
if ! "$PY" -c "import pydantic" 2>/dev/null; then
  if ls .gpu/wheels/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --target .gpu/site .gpu/wheels/*.whl || exit 1
    export PYTHONPATH=".gpu/site${PYTHONPATH:+:$PYTHONPATH}"
  else
    echo "pydantic is missing and .gpu/wheels is empty: run bash benchmarks/gpu_bundle.sh here and carry .gpu" >&2
    exit 1
  fi
fi
# the decoded CIFAR-10 cache (~176 MB) outside the carried .gpu/, which must stay under 64 MiB
export ASSEMBLED_DATA_CACHE=${ASSEMBLED_DATA_CACHE:-${TMPDIR:-/tmp}/assembled-gpu-suite-cache}
exec "$PY" benchmarks/gpu_suite.py --out "${OUT:-gpu-suite-out}" "$@"
