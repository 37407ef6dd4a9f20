"""The published JSON Schema: generated from the models, checked in, and in agreement with them."""

from __future__ import annotations

import json
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
