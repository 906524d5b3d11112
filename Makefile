# The two commands of the README:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench clean

$(BIN)/zoo: pyproject.toml constraints.txt plugins/zoo-squeezenet/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	$(BIN)/pip install --quiet -c constraints.txt --no-deps --no-build-isolation -e plugins/zoo-squeezenet
	touch $@

setup: $(BIN)/zoo  ## create .venv and install zoo, its dev tools and the example plugin

demo: setup  ## list, inspect, train on real digits, evaluate, export, predict
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/demo.sh

test: setup  ## the whole test suite (CPU only, a few minutes)
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) runs demo-out .pytest_cache
