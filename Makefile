# marshall: the two commands are `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
CORES  ?= 2

.PHONY: demo test install lint bench clean

$(BIN)/marshall: pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $@

install: $(BIN)/marshall

# after a killed run: unlocks (when no Snakemake runs here) and reruns what was unfinished
demo: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python scripts/workflow.py --cores $(CORES) --snakefile Snakefile

test: install
	$(BIN)/python -m pytest -q -n $(CORES) tests

lint: install
	$(BIN)/ruff check pipeline tests benchmarks
	$(BIN)/ruff format --check pipeline tests benchmarks

bench: install
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf results logs .snakemake
