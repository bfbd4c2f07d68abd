# moodtunes: `make demo` and `make test` do everything on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install models demo test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project with its test tools

models: install  ## convert FaceNet weights into the cache (offline) and check every model file
	$(VENV)/bin/moodtunes models prepare

demo: models  ## run the whole flow on the embedded defaults
	$(VENV)/bin/moodtunes demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

pytest: install
	$(PY) -m pytest

test: lint typecheck pytest  ## ruff, mypy and the full test suite

bench: models  ## print (and write JSON of) the benchmark figures quoted in the README
	$(PY) benchmarks/face_pipeline.py
	$(PY) benchmarks/emotion.py
	$(PY) benchmarks/music.py
	$(PY) benchmarks/bot_load.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
