"""The published result-event schema: generated from the model, checked in, and true of what is published."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest

from llmobs_actions.results import FAILED, SUCCEEDED, result_detail, result_event_json_schema
from tests.conftest import ROOT

SCHEMA_FILE = ROOT / "schemas" / "result-event.v1.schema.json"


def validator() -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(json.loads(SCHEMA_FILE.read_text()))


def test_checked_in_result_schema_matches_the_model() -> None:
    assert json.loads(SCHEMA_FILE.read_text()) == result_event_json_schema(), (
        "schemas/result-event.v1.schema.json is stale: run `make schema` and commit the result"
    )


def test_result_schema_is_draft_4_as_the_eventbridge_registry_reads_it() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    jsonschema.Draft4Validator.check_schema(schema)
    assert "const" not in SCHEMA_FILE.read_text(), "draft 4 has no const: a registry would ignore it"


def envelope(detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    """The event as EventBridge delivers it to a rule's target."""
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": detail_type,
        "source": "llmobs.actions",
        "account": "123456789012",
        "time": "2026-12-03T01:02:03Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


WHEN = datetime(2026, 12, 3, 1, 2, 3, tzinfo=UTC)
COMMON = {"message_id": "m-1", "idempotency_key": "k", "correlation_id": "ci-1", "receive_count": 1, "now": WHEN}
PUBLISHED = {
    "clone done": (
        SUCCEEDED,
        result_detail(
            action="clone_dataset", details={"new_dataset_id": "d2", "name": "n", "current_version": 0}, **COMMON
        ),
    ),
    "delete done": (
        SUCCEEDED,
        result_detail(action="delete_experiments", details={"deleted": 2, "already_gone": 1}, **COMMON),
    ),
    "dry run": (
        SUCCEEDED,
        result_detail(action="prune_experiments", details={"dry_run": True, "to_delete": 3}, **COMMON),
    ),
    "duplicate": (SUCCEEDED, result_detail(action="clone_dataset", details={"duplicate": True, "name": "n"}, **COMMON)),
    "rejected": (FAILED, result_detail(action="clone_dataset", error=("rejected", "404: not found", 404), **COMMON)),
    "unreadable": (
        FAILED,
        result_detail(
            message_id="m-2",
            action=None,
            idempotency_key=None,
            correlation_id=None,
            receive_count=1,
            error=("invalid", "not JSON", None),
            now=WHEN,
        ),
    ),
}


@pytest.mark.parametrize("outcome", PUBLISHED)
def test_every_kind_of_published_event_is_valid_under_the_schema(outcome: str) -> None:
    detail_type, detail = PUBLISHED[outcome]
    validator().validate(envelope(detail_type, detail.model_dump(mode="json", by_alias=True)))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"status": "maybe"}, "status is succeeded or failed"),
        ({"error": {"class": "invalid"}}, "an error has a message"),
        ({"surprise": 1}, "no field outside the contract"),
    ],
)
def test_the_schema_refuses_what_the_function_never_publishes(change: dict[str, Any], reason: str) -> None:
    detail = PUBLISHED["clone done"][1].model_dump(mode="json", by_alias=True) | change
    assert not validator().is_valid(envelope(SUCCEEDED, detail)), reason


def test_the_schema_refuses_an_unknown_detail_type() -> None:
    detail = PUBLISHED["clone done"][1].model_dump(mode="json", by_alias=True)
    assert not validator().is_valid(envelope("LLMObs Action Maybe", detail))
