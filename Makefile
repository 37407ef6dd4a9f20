# Set-up-to-result commands. Each creates .venv on first use (Python 3.11+ and PyPI are all it needs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
export PYTHONPATH := src:.

.PHONY: test demo lint typecheck unit schema clean

$(INSTALLED): requirements-dev.txt src/requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "llmobs-actions needs Python 3.11+; set PYTHON=python3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements-dev.txt
	@touch $@

## make test: lint, type-check and run every test
test: lint typecheck unit

lint: $(INSTALLED)
	$(BIN)/ruff check src local tests
	$(BIN)/ruff format --check src local tests

typecheck: $(INSTALLED)
	$(BIN)/mypy --strict src

unit: $(INSTALLED)
	$(BIN)/pytest

## make demo: run the function over events/ on the local stack (EVENT=events/x.json for one file)
demo: $(INSTALLED)
	$(BIN)/python -m local.demo $(if $(EVENT),--event $(EVENT))

## make schema: regenerate the JSON Schema of the message contract
schema: $(INSTALLED)
	$(BIN)/python -m llmobs_actions.contract > schemas/action.v1.schema.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .aws-sam
