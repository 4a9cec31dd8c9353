#!/usr/bin/env bash
# Prepare what the GPU suite carries to a lent GPU machine (Python 3.12, torch, torchvision,
# timm, numpy, scipy, pandas; no pydantic, ray, mlflow or optuna): .gpu/wheels (pydantic and
# what it needs, at the versions of requirements.lock, for CPython 3.12 x86_64) and
# .gpu/cifar10 (the shipped CIFAR-10 archives, ~20 MB). About 23 MB in all; .gpu/ is ignored
# by git, so the device tool's `carry` names it. Run once here: bash benchmarks/gpu_bundle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
mkdir -p .gpu/wheels .gpu/cifar10
pins=()
for name in pydantic pydantic_core annotated-types typing-inspection typing_extensions tqdm; do
  pins+=("$(grep -i -E "^${name//[-_]/[-_]}==" requirements.lock)")
done
"$PY" -m pip download -q --only-binary=:all: --no-deps --python-version 3.12 --implementation cp \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .gpu/wheels "${pins[@]}"
src=${CIFAR:-../shared/data/cifar10}
if [ -d "$src" ]; then
  cp -u "$src"/*.tar.gz .gpu/cifar10/ 2>/dev/null || cp -ru "$src"/train "$src"/test .gpu/cifar10/
fi
rm -rf .gpu/cifar10/.assembled-cache  # a decoded cache (~176 MB) would not fit the 64-MiB carry
du -sh .gpu
