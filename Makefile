# moodtunes: `make demo` and `make test` do everything on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LOCK   := requirements.lock

# `make lock UPGRADE=aiohttp` (or several, space-separated) moves those packages to their newest
# allowed release; `make lock UPGRADE=all` re-resolves everything. Plain `make lock` keeps every pin.
UPGRADE ?=
LOCK_ARGS := $(if $(filter all,$(UPGRADE)),--upgrade,$(addprefix --upgrade-package=,$(UPGRADE)))

.PHONY: install lock models demo test lint typecheck pytest bench messages clean

# Every package from the lock: exact versions, each file checked against its sha256 (pip itself too).
# Then the project, editable, with no dependencies and the locked build backend. `pip check` fails when
# pyproject.toml asks for something the lock does not give: run `make lock` and commit both.
$(STAMP): $(LOCK) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes -r $(LOCK)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@$(PY) -m pip check || { echo "$(LOCK) does not match pyproject.toml: run 'make lock'" >&2; exit 1; }
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the locked dependencies, the test tools and the project

# pip-compile reads its options from [tool.pip-tools] in pyproject.toml. Only pip-tools is needed,
# at its locked version, so this works before `make install` and on a pyproject the lock lags behind.
lock:  ## regenerate requirements.lock from pyproject.toml (docs/dependencies.md)
	@test -x $(VENV)/bin/pip-compile || { $(PYTHON) -m venv $(VENV) && $(PY) -m pip install -q \
		"pip-tools==$$(sed -n 's/^pip-tools==\([^ ]*\).*/\1/p' $(LOCK))"; }
	CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile $(LOCK_ARGS) --output-file $(LOCK) pyproject.toml

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
	$(PY) benchmarks/scale.py

# Chat messages: pybabel (Babel, a runtime dependency) reads its options from [tool.babel.*] in
# pyproject.toml. Re-extract every _() and N_() of core/ and bot/ into the template, then merge it into
# each language's catalog (new messages arrive untranslated, changed ones fuzzy: translate them, and
# tests/test_i18n.py passes again). A new language: `pybabel init -l xx`, see docs in core/app/i18n.py.
messages: install  ## re-extract the chat's messages (core/app/locale/moodtunes.pot) and update each catalog
	$(VENV)/bin/pybabel extract
	$(VENV)/bin/pybabel update

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
