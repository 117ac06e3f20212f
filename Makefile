# One command to set up and run each job. Everything lives in .venv inside the repository.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fakelens-installed

.PHONY: setup demo app test test-fast browser-deps bench default-model clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

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

test: setup browser-deps
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow"

bench: setup
	for script in benchmarks/*.py; do $(PY) $$script || exit 1; done

# Retrain the bundled model from ../shared/data (about 45 min on 2 CPU cores).
default-model: setup
	bash scripts/train_default_model.sh

clean:
	rm -rf demo-out .pytest_cache build dist src/*.egg-info
