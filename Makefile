# The two set-up commands of the README. Each creates .venv when missing and installs what is needed;
# a second run installs nothing (the stamp file records the last install).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# A CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
# GPU users: install your own torch into .venv first, then `make install TORCH_SPEC=`.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test lint typecheck docs check-wheel ci bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	@if [ -n "$(TORCH_SPEC)" ]; then $(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"; fi
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/babysit demo

# scripts/ensure_*.sh install and start what the tests need beyond Python (a browser, a database server)
# when it is missing; each is idempotent and fast when everything is already there.
test: $(STAMP)
	@for script in scripts/ensure_*.sh; do [ -e "$$script" ] || continue; bash "$$script" || exit 1; done
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

# the public API and the command line (files and settings: [tool.mypy] in pyproject.toml)
typecheck: $(STAMP)
	$(BIN)/mypy

# the user guide and the API reference from the docstrings, into site/; a warning is an error
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --quiet

# build the wheel, install it with the core dependencies only into a fresh venv, smoke-run it
check-wheel: $(STAMP)
	PYTHON=$(PYTHON) TORCH_SPEC="$(TORCH_SPEC)" BUILD_PYTHON=$(BIN)/python bash scripts/check_wheel.sh

# what CI runs (.ci/run): the README's test command, then the package checks
ci: test typecheck docs check-wheel

bench: $(STAMP)
	$(BIN)/python bench/fit_overhead.py

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache site
