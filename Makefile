# Two entry points: `make demo` (the main job: `meltano run tap-vobiz target-postgres` on the
# embedded default, twice) and `make test`. Both create .venv and install the project on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo tap-demo test lint bench docs wheel clean

$(BIN)/tap-vobiz: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e . --group dev
	touch $@

demo: $(BIN)/tap-vobiz
	$(BIN)/python scripts/pipeline_demo.py

tap-demo: $(BIN)/tap-vobiz
	$(BIN)/python scripts/tap_demo.py

test: $(BIN)/tap-vobiz
	$(BIN)/pytest

bench: $(BIN)/tap-vobiz
	$(BIN)/python benchmarks/run.py

docs: $(BIN)/tap-vobiz
	$(BIN)/sphinx-build -W --keep-going -n -b html docs docs/_build/html

wheel: $(BIN)/tap-vobiz
	$(BIN)/uv build --wheel -o dist .

lint: $(BIN)/tap-vobiz
	$(BIN)/ruff check tap_vobiz vobiz_emulator harness tests scripts benchmarks
	$(BIN)/ruff format --check tap_vobiz vobiz_emulator harness tests scripts benchmarks
	$(BIN)/mypy tap_vobiz vobiz_emulator

clean:
	rm -rf $(VENV) output .meltano dist docs/_build
