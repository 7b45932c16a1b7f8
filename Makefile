# Two entry points: `make demo` (the main job on the embedded emulator) and `make test`.
# Both create .venv and install the project into it on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/tap-vobiz: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/tap-vobiz
	$(BIN)/python scripts/demo.py

test: $(BIN)/tap-vobiz
	$(BIN)/pytest

bench: $(BIN)/tap-vobiz
	$(BIN)/python benchmarks/run.py

lint: $(BIN)/tap-vobiz
	$(BIN)/ruff check tap_vobiz vobiz_emulator tests scripts benchmarks
	$(BIN)/ruff format --check tap_vobiz vobiz_emulator tests scripts benchmarks
	$(BIN)/mypy tap_vobiz vobiz_emulator

clean:
	rm -rf $(VENV) output
