# `make demo` and `make test` work on a fresh machine with no internet: `setup` builds .venv
# from the pinned lock file (torch's CPU build comes from local disk) and is a no-op when done.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup browser demo test bench clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: setup
	$(BIN)/clipforensics demo

# The page's tests drive Debian's chromium through Playwright (no browser download): installed when missing.
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends chromium >/dev/null)

test: setup browser
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/video_memory.py
	$(BIN)/python bench/serve_load.py
	$(BIN)/python bench/detect_crops.py
	$(BIN)/python bench/video_pipeline.py
	$(BIN)/python bench/video_pipeline.py --large
	$(BIN)/python bench/train_step.py
	$(BIN)/python bench/localize.py
	$(BIN)/python bench/backbones.py
	$(BIN)/python bench/ray_engine.py
	$(BIN)/python bench/evaluate_tables.py

clean:
	rm -rf $(VENV) .demo demo-output .pytest_cache
