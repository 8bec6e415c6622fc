# fraudpipe: `make demo` runs the pipeline end to end, `make test` runs the checks and tests.
# Both bootstrap a fresh machine first (system packages, uv, venv, .env) and start the local stack.
SHELL := /bin/bash
UV := python3 -m uv
RUN := $(UV) run --frozen
PYTEST_ARGS ?=
IMAGE_TAG ?= localhost/fraudpipe:dev
# The tag tests/e2e/test_container_image.py builds and runs.
TEST_IMAGE := localhost/fraudpipe:test

.PHONY: prebuild bootstrap stack-up stack-down stack-status lint typecheck test demo bench dashboard image

bootstrap:
	@bash infra/local/bootstrap.sh

stack-up: bootstrap
	$(RUN) fraudpipe stack up

stack-down:
	$(RUN) fraudpipe stack down

stack-status:
	$(RUN) fraudpipe stack status

lint: bootstrap
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports --no-cache

# The package, the consumers and the benchmarks, in one run (pyproject.toml's [tool.mypy]).
typecheck: bootstrap
	$(RUN) mypy

# The DAGs stay paused and no supervised scorer or scoring API runs on the test stack: the
# schedules would ingest days, a scorer would consume, and the API's recorder would join the
# group a test's own API records in, while tests count (the tests' `stack` fixture does the
# same, for a plain `pytest`; the supervision tests run supervisors of their own).
test: export FRAUDPIPE_AIRFLOW_UNPAUSE_DAGS = false
test: export FRAUDPIPE_SCORERS = 0
test: export FRAUDPIPE_API_ENABLED = false
# mypy (one core, 2-3 min from a cold cache) runs while the stack starts, which is mostly
# waiting on its services. Then two pytest-xdist workers, one for the fault suite and the
# browser-driven end-to-end runs, one for the rest (tests/conftest.py): a test waits on
# services and subprocesses much of the time, so two share the 2 cores well.
test: prebuild lint
	$(MAKE) --no-print-directory -j2 typecheck stack-up
	PYTHONFAULTHANDLER=1 $(RUN) pytest -n 2 --durations=25 $(PYTEST_ARGS)

# The helm binary (built from the Go module proxy, minutes from a cold cache) and the test
# image, built in the background while the checks, the stack and the other tests run: their
# tests come last (testpaths in pyproject.toml) and wait on the same builds' locks.
prebuild: bootstrap
	@mkdir -p .stack/logs
	@echo "prebuild: helm and the test image in the background (.stack/logs/prebuild.log)"
	@nohup bash -c 'bash infra/local/install_helm.sh && bash infra/container/build.sh $(TEST_IMAGE)' \
		> .stack/logs/prebuild.log 2>&1 &

# The stack comes up with the DAGs paused; the demo unpauses them once its schema and first
# model exist, so their scheduled runs never meet an empty database.
demo: export FRAUDPIPE_AIRFLOW_UNPAUSE_DAGS = false
demo: stack-up
	$(RUN) fraudpipe demo
	$(RUN) fraudpipe dashboard

# Serves on 127.0.0.1:$FRAUDPIPE_DASHBOARD_PORT (8501) until Ctrl-C.
dashboard: stack-up
	$(RUN) fraudpipe dashboard

bench: stack-up
	$(RUN) python bench/ingest.py
	$(RUN) python bench/publish.py
	$(RUN) python bench/stream.py
	$(RUN) python bench/retrain.py
	$(RUN) python bench/dashboard.py
	$(RUN) python bench/api.py
	$(RUN) python bench/recorder.py

# The fraudpipe image (Containerfile) with podman, on a Debian base made here (see its script).
image: bootstrap
	bash infra/container/build.sh $(IMAGE_TAG)
