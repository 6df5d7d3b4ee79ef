# Two commands: `make run` and `make test`. Both bootstrap .venv from requirements.txt.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-requirements
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test check bench migrate bootstrap clean node-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

bootstrap: $(STAMP)

migrate: bootstrap
	$(BIN)/python manage.py migrate --noinput

run: migrate
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# Lint, format check and types of the application code (pyproject.toml has the settings).
APP := streaming conversations valuecell_site manage.py
check: bootstrap
	$(BIN)/ruff check $(APP)
	$(BIN)/ruff format --check $(APP)
	$(BIN)/mypy $(APP)

test: bootstrap node-deps
	command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)
	$(BIN)/python -m pytest

# The Node clients the tests drive (the real @ag-ui/client), from tests/node's lockfile.
# Without npm: the Node tests fail under CI=true and skip elsewhere (tests/e2e/test_agui_client.py).
node-deps:
	@if command -v npm >/dev/null; then npm ci --prefix tests/node --no-audit --no-fund --loglevel=error; \
	else case "$$CI" in 1|true|TRUE|True|yes) echo "npm is required in CI (Node 20 + npm)"; exit 1;; \
	*) echo "npm not found: the Node tests will be skipped";; esac; fi

# The reference app's FastAPI + sse-starlette + uvicorn are dev-only: bench/requirements.txt.
BENCH_STAMP := $(VENV)/.installed-bench-requirements

$(BENCH_STAMP): bench/requirements.txt | $(STAMP)
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	touch $(BENCH_STAMP)

bench: bootstrap $(BENCH_STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache tests/node/node_modules
