# The two commands of the README. Each creates .venv when missing and installs the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,lab]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/hipdata demo --data data/demo --out reports/demo

test: $(STAMP)
	$(BIN)/ruff check hipdata tests benchmarks
	$(BIN)/ruff format --check hipdata tests benchmarks
	$(BIN)/python -m pytest

# Scaling benchmark (10^5 .. 10^7 set rows; about half an hour on 2 cores): reports/benchmarks/
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_scale.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) reports/demo
