# The whole user interface; see README.md.
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TABLE ?= 7
PROFILE ?= cpu
DATA ?=
PORT ?= 5000
REPEATS ?=
FORMAT ?= text
DATA_FLAG := $(if $(DATA),--data $(DATA),)
REPEATS_FLAG := $(if $(REPEATS),--repeats $(REPEATS),)

.PHONY: install lock install-browser install-s3 test test-fast lint ablation report search optuna-ui ui dashboard benchmarks clean

install: $(BIN)/assembled

# every transitive dependency under requirements.lock (`make lock` regenerates it)
$(BIN)/assembled: pyproject.toml requirements.lock
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev,video]'
	# frost photographs for the corruption suite: package data only (its imports need removed pkg_resources)
	$(BIN)/pip install --quiet --no-deps imagecorruptions==1.1.2
	touch $@

# re-resolve and pin every transitive dependency after a change to pyproject.toml
lock: install
	$(BIN)/python docker/lock.py

install-browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)

# Ceph's radosgw on a one-OSD in-memory cluster: the real S3 server the S3 tests start (tests/ceph.py)
install-s3:
	@command -v radosgw >/dev/null && command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    radosgw ceph-mon ceph-osd ceph-common)

# The whole suite: two pytest workers (most slow tests wait on servers, Ray and subprocesses),
# one test file per worker, then the tests that stop every Ray process (`serial`) alone.
# pytest's exit code 5 (nothing collected) is a failure, not a pass.
test: install
	$(BIN)/pytest -q -n 2 --dist loadfile -m "not serial" --durations=15; rc=$$?; \
	$(BIN)/pytest -q -m serial; rc2=$$?; \
	if [ $$rc -eq 5 ] || [ $$rc2 -eq 5 ]; then echo "no tests collected" >&2; exit 1; fi; \
	if [ $$rc -ne 0 ]; then exit $$rc; fi; exit $$rc2

test-fast: install
	$(BIN)/pytest -q -n 2 --dist loadfile -m "not slow"

lint: install
	$(BIN)/ruff check platform tests benchmarks dashboards

ablation: install
	$(BIN)/assembled ablation $(TABLE) --profile $(PROFILE) $(DATA_FLAG) $(REPEATS_FLAG)

# an Optuna search around a row: make search TABLE=7 ROW=E11 TRIALS=30 [PROFILE=cpu] [DATA=...]
ROW ?=
TRIALS ?= 20
OPTUNA_PORT ?= 8089
search: install
	@test -n "$(ROW)" || (echo "make search needs ROW=<row id>, e.g. make search TABLE=7 ROW=E11 TRIALS=30" >&2; exit 2)
	$(BIN)/assembled search $(TABLE) --row $(ROW) --trials $(TRIALS) --profile $(PROFILE) $(DATA_FLAG)

# optuna-dashboard over the studies (optuna.db beside mlflow.db, or OPTUNA_STORAGE=<url>)
optuna-ui: install
	$(BIN)/optuna-dashboard $(or $(OPTUNA_STORAGE),sqlite:///$(CURDIR)/optuna.db) --host 127.0.0.1 --port $(OPTUNA_PORT)

# the paper-style table from MLflow: FORMAT=text|md|latex|csv
report: install
	$(BIN)/assembled report $(TABLE) --format $(FORMAT)

# TABLE=7 draws one table; TABLE= (empty) draws every table in the store
dashboard: install
	$(BIN)/assembled dashboard $(TABLE)

ui: install
	$(BIN)/assembled ui --port $(PORT)

benchmarks: install
	$(BIN)/python benchmarks/train_step.py
	$(BIN)/python benchmarks/evaluation.py

clean:
	rm -rf dashboards/out runs .pytest_cache
