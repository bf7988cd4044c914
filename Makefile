# The two commands of the README. Each creates .venv when missing and installs the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,lab]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/hipdata demo --out reports/demo

test: $(STAMP)
	$(BIN)/ruff check hipdata tests benchmarks
	$(BIN)/ruff format --check hipdata tests benchmarks
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) reports/demo
