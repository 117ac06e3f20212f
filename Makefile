# One command to set up and run each job. Everything lives in .venv inside the repository.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fakelens-installed

# The install lock: every package `make setup` and CI install (the app and the test tools), each pinned
# to one version with its hashes. $(RUNTIME_LOCK) is its subset for the app alone, with the same pins;
# it ships in the wheel, where `fakelens doctor` checks it. pyproject.toml keeps ranges for library users.
LOCK := requirements.lock
RUNTIME_LOCK := src/fakelens/runtime.lock
# pip-compile lives in a venv of its own, so that the locked .venv holds exactly what the lock names.
LOCK_TOOLS := .venv-lock
PIP_TOOLS := pip-tools==7.7.0
# torch as tested; `make lock` keeps every other pin that pyproject.toml still allows (UPGRADE=1 takes
# the newest releases it allows).
LOCK_PINS := --upgrade-package torch==2.14.1 --upgrade-package torchvision==0.29.1
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_TOOLS)/bin/pip-compile --quiet --generate-hashes \
	--allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links $(if $(UPGRADE),--upgrade) $(LOCK_PINS)

.PHONY: setup lock demo app lint format test test-fast test-clone check-wheel browser-deps bench default-model clean

# Rebuilt when the lock or pyproject.toml changes. Hash-checked: nothing unlocked gets in (the project
# itself is installed from this tree, with no dependencies and no build isolation).
$(STAMP): $(LOCK) pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

setup: $(STAMP)

# Regenerates $(LOCK) and $(RUNTIME_LOCK) from pyproject.toml (a few minutes; reads PyPI).
lock:
	test -x $(LOCK_TOOLS)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_TOOLS) && $(LOCK_TOOLS)/bin/pip install --quiet $(PIP_TOOLS); }
	$(PIP_COMPILE) --extra dev --output-file $(LOCK) pyproject.toml
	cp $(LOCK) $(RUNTIME_LOCK)  # start from the full lock's pins, so both name the same versions
	$(PIP_COMPILE) --output-file $(RUNTIME_LOCK) pyproject.toml

# The main job on bundled defaults, in the terminal: verdicts for the bundled examples, then the face
# crops and Grad-CAM overlays of the fake example video under demo-out/.
demo: setup
	$(VENV)/bin/fakelens predict examples/
	$(VENV)/bin/fakelens faces examples/fake_ffpp_NeuralTextures_004_982.mp4 --out demo-out/faces
	$(VENV)/bin/fakelens explain examples/fake_ffpp_NeuralTextures_004_982.mp4 --out demo-out/explain --top 4

# The Streamlit app on the bundled model and examples.
app: setup
	$(VENV)/bin/streamlit run app.py

# Debian's Chromium for the real-browser test (root on CI; skipped quietly when apt is unavailable).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || echo "warning: could not install chromium; the browser test will be skipped"; \
	  else echo "note: chromium not installed; the browser test will be skipped"; fi; }

# ruff (lint rules and format) and mypy, configured in pyproject.toml; CI runs it before the tests.
LINT_PATHS := src tests app.py scripts benchmarks docs
lint: setup
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy

# Apply ruff's safe fixes and formatting in place.
format: setup
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)
	$(VENV)/bin/ruff format $(LINT_PATHS)

test: setup browser-deps
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow"

# The quick suite as a user's clone sees it: no ../shared (no media pool, no ImageNet weights).
test-clone: setup
	FAKELENS_SHARED=none $(PY) -m pytest -m "not slow"

# Build the wheel, install it in a new venv outside the repository from the runtime lock, then run
# `fakelens predict` on bundled examples and `fakelens app` until it answers (see .ci/check-wheel).
check-wheel: setup
	bash .ci/check-wheel $(PY)

bench: setup
	for script in benchmarks/*.py; do $(PY) $$script || exit 1; done

# Retrain the bundled model from ../shared/data (about 3 hours on 2 CPU cores; see scripts/train_default_model.sh).
default-model: setup
	bash scripts/train_default_model.sh

clean:
	rm -rf demo-out .pytest_cache .ruff_cache .mypy_cache build dist src/*.egg-info
