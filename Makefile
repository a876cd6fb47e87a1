# The verbs people expect. `make serve` and `make test` are the README's two commands:
# each creates .venv (once), installs the pinned dependencies and runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: setup serve test lint bench screenshots docs clean

$(STAMP): pyproject.toml setup.py src/waypost/_plainstore.c requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

# Serves the embedded SQLite rule store waypost.db, seeded from the example rules on first run.
serve: $(STAMP)
	$(BIN)/waypost serve examples/rules.yaml --db sqlite:///waypost.db --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

# The documentation site from docs/ (Sphinx, MyST, Furo), warnings as errors: docs/_build/html.
docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

# The README's screenshots of the admin page, taken by its browser tests (needs chromium).
screenshots: $(STAMP)
	WAYPOST_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q tests/admin/test_browser_pages.py

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_engine.py
	$(BIN)/python benchmarks/bench_server.py
	$(BIN)/python benchmarks/bench_middleware.py
	$(BIN)/python benchmarks/bench_start.py
	$(BIN)/python benchmarks/bench_reload.py
	$(BIN)/python benchmarks/bench_guards.py
	$(BIN)/python benchmarks/bench_admin.py
	$(BIN)/python benchmarks/bench_load.py
	$(BIN)/python benchmarks/bench_import.py
	$(BIN)/python benchmarks/bench_check.py
	$(BIN)/python benchmarks/bench_nginx_export.py
	$(BIN)/python benchmarks/update_readme.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info src/waypost/*.so .pytest_cache .mypy_cache .ruff_cache .hypothesis
