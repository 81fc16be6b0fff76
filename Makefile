# One task runner for people and CI. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# The system interpreter, resolved before .venv/bin goes first on PATH below.
PYTHON ?= $(shell command -v python3)
UV_VERSION := 0.13.8
TOOLS := $(CURDIR)/.tools
UV ?= $(TOOLS)/bin/uv
VENV := $(CURDIR)/.venv
STAMP := $(VENV)/.installed

# Offline-friendly, quiet tools; the venv first on PATH so DVC stages find `gigmatch`.
export PATH := $(VENV)/bin:$(PATH)
export UV_PYTHON_DOWNLOADS := never
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
# Prefect's state stays in the project (ephemeral server unless PREFECT_API_URL is set).
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120

# GIGMATCH_PROFILE=team: every target runs against the team stack's servers, from the .env.team that
# `make stack-up` writes (or a team's own file with the same variables: GIGMATCH_ENV_FILE=...).
GIGMATCH_ENV_FILE ?= .env.team
ifeq ($(GIGMATCH_PROFILE),team)
ifeq ($(wildcard $(GIGMATCH_ENV_FILE)),)
$(error GIGMATCH_PROFILE=team needs $(GIGMATCH_ENV_FILE): run `make stack-up` first, or set GIGMATCH_ENV_FILE)
endif
include $(GIGMATCH_ENV_FILE)
export $(shell sed -n 's/^\([A-Z_][A-Z0-9_]*\)=.*/\1/p' $(GIGMATCH_ENV_FILE))
endif

.PHONY: help install run data repro train export serve serving-requirements push batch drift monitor monitor-serve replay ship-logs stack-up stack-down stack-status metrics-diff verify new-project test test-fast lint format typecheck hooks bench clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(UV):
	@echo "bootstrapping uv $(UV_VERSION) into $(TOOLS)"
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(TOOLS) uv==$(UV_VERSION)

$(STAMP): $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --all-extras --group dev
	@touch $@

install: $(STAMP) ## Create .venv from uv.lock (bootstraps uv with pip if needed)

run: install data repro push ## Install, then run the whole lifecycle on the embedded defaults

data: install ## Materialise the snapshot data.dvc pins (cache, remote, else regenerate; md5 checked)
	gigmatch data pull

repro: install ## Reproduce the DVC pipeline: validate, train, export, batch, drift (dvc repro)
	dvc repro

train: install ## Run the training flow now, even if DVC would skip it
	gigmatch train

export: install ## Export the champion from the MLflow registry into bundle/
	gigmatch export --out bundle

serve: install ## Serve bundle/ with FastAPI on http://127.0.0.1:8000 (make export first)
	gigmatch serve --bundle bundle

serving-requirements: $(UV) ## Re-export serving/requirements.txt (the image's pinned set) from uv.lock
	$(UV) export --frozen --no-dev --extra serving --no-hashes --no-emit-project --no-header --quiet -o serving/requirements.txt

push: install ## Share the pinned data with the DVC remote (GIGMATCH_DVC_REMOTE, else the default one)
	gigmatch data push

# The drift gate's inputs; override on the command line, e.g. `make batch SCENARIO=concept`.
SCENARIO ?= none
BATCH_SEED ?= 1
BATCH ?= batches/newest.parquet
CURRENT ?= $(BATCH)
BASE ?= HEAD

batch: install ## Simulate the newest batch (SCENARIO=, e.g. rate_undercut; `gigmatch data scenarios` lists them)
	gigmatch data batch --scenario $(SCENARIO) --seed $(BATCH_SEED) --out $(BATCH)

drift: install ## Drift gate on CURRENT (default: the newest batch) vs the champion's training data; exit 0 ok, 1 drift, 2 contract, 3 error
	gigmatch drift --current $(CURRENT)

monitor: install ## Run the monitoring flow once: gate new prediction-log lines, retrain on drift
	gigmatch monitor

monitor-serve: install ## Monitoring on GIGMATCH_MONITOR_CRON: served here until stopped, or deployed on GIGMATCH_WORK_POOL
	gigmatch monitor --serve

replay: install ## Replay the marketplace against a running server (make serve), e.g. REPLAY_ARGS="--scenario concept --drift-from-day 5"
	gigmatch replay $(REPLAY_ARGS)

ship-logs: install ## Ship serving's finished daily logs to GIGMATCH_LOG_STORE (s3://...)
	gigmatch ship-logs

stack-up: install ## Start the team stack on loopback (Postgres, S3, MLflow, Prefect + worker, Prometheus); writes .env.team
	gigmatch stack up

stack-down: install ## Stop every server of the team stack by PID (data stays in .stack/)
	gigmatch stack down

stack-status: install ## Each server of the team stack: PID, health, URL, memory (exit 1 unless all healthy)
	gigmatch stack status

metrics-diff: install ## Write reports/metrics_diff.md: dvc metrics diff against BASE (e.g. BASE=origin/main)
	mkdir -p reports && dvc metrics diff --md $(BASE) > reports/.metrics_diff.md && mv reports/.metrics_diff.md reports/metrics_diff.md

new-project: install ## Start a client project from this one: make new-project NAME=acme_match [DEST=../acme_match]
	gigmatch new-project $(NAME) $(if $(DEST),--dest $(DEST))

verify: install ## Reproduce the committed pipeline in a scratch clone; compare the model fingerprint (0 match, 1 diff)
	gigmatch verify

# Test workers (pytest-xdist): one more than the cores by default, since the slowest tests spend much of
# their time waiting on the servers they start, replays sent at a fixed rate and image builds (measured
# on 2 cores: 19 min with 3 workers, 26-29 min with 2). TEST_WORKERS=0 runs the suite in this process.
TEST_WORKERS ?= $(shell $(PYTHON) -c "import os; print((os.cpu_count() or 1) + 1)")

test: install ## Install, then run the test suite (a worker per core, and one more: TEST_WORKERS=0 for one process)
	pytest -n $(TEST_WORKERS) --dist loadgroup --durations=15

test-fast: install ## Run the suite without the slow tests (nor the client-project lifecycle)
	pytest -n $(TEST_WORKERS) --dist loadgroup -m "not slow and not template"

lint: install ## Lint, check formatting and the import contracts (import-linter, in pyproject.toml)
	ruff check .
	ruff format --check .
	lint-imports

format: install ## Apply formatting and safe lint fixes
	ruff format .
	ruff check --fix .

typecheck: install ## Type-check the packages
	mypy

hooks: install ## Install the git pre-commit hooks (ruff, format, devtools/repo_guard.py against state, secrets, models)
	pre-commit install

bench: install ## Run the benchmarks (prints figures; the serving ones need wrk and an exported bundle)
	python benchmarks/bench_data.py
	python benchmarks/bench_training.py
	python benchmarks/bench_serving.py
	python benchmarks/bench_reload.py
	python benchmarks/bench_drift.py
	python benchmarks/bench_loop.py
	python benchmarks/bench_scale.py

clean: ## Remove caches and the virtual environment (keeps data and the DVC cache)
	rm -rf $(VENV) $(TOOLS) .pytest_cache .ruff_cache .mypy_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
