"""Every file in events/ drives the real handler to its intended outcome (what `sam local invoke -e` would do)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmobs_actions import handler
from local.datadog_emulator import DatadogEmulator
from tests.conftest import EVENTS, EXPERIMENT_IDS, Aws, FakeLambdaContext

# file -> (what happens to each record: "done" or the error_class it is dead-lettered with,
#          clone calls Datadog receives, delete calls Datadog receives)
EXPECTED: dict[str, tuple[list[str], int, int]] = {
    "sqs-clone-dataset.json": (["done"], 1, 0),
    "sqs-delete-experiments.json": (["done"], 0, 1),
    "sqs-eventbridge-envelope.json": (["done"], 1, 0),
    "sqs-mixed-batch.json": (["done", "invalid", "invalid", "invalid"], 1, 0),
    "sqs-dataset-not-found.json": (["rejected"], 1, 0),
    "eventbridge-clone-dataset.json": (["done"], 1, 0),
    "schedule-input-clone.json": (["done"], 1, 0),
    "schedule-nightly-snapshot.json": (["done"], 1, 0),
    "sqs-prune-experiments-dry-run.json": (["done"], 0, 0),
    "sqs-prune-datasets-dry-run.json": (["done"], 0, 0),
    "sqs-clone-dataset-by-name.json": (["done"], 1, 0),
}


def test_every_event_file_has_an_expected_outcome() -> None:
    assert sorted(path.name for path in EVENTS.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.usefixtures("function_env")
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_event_file_reaches_its_intended_outcome(
    name: str, aws: Aws, emulator: DatadogEmulator, context: FakeLambdaContext
) -> None:
    # GIVEN an event file exactly as `sam local invoke -e events/<name>` would pass it
    event = json.loads(Path(EVENTS / name).read_text())
    expected, clone_calls, delete_calls = EXPECTED[name]

    # WHEN the handler runs on it
    response = handler.lambda_handler(event, context)

    # THEN each record is done or dead-lettered with the intended class, and nothing is left to retry
    dead_letters = aws.dead_letters()
    assert sorted(d["attributes"]["error_class"] for d in dead_letters) == sorted(c for c in expected if c != "done")
    if "Records" in event:
        assert response == {"batchItemFailures": []}
        bodies = {record["body"] for record in event["Records"]}
        assert {d["body"] for d in dead_letters} <= bodies, "dead-lettered bodies must be the originals, unchanged"
    else:
        assert response["status"] == ("done" if expected == ["done"] else "dead_lettered")

    assert len(emulator.calls("POST", "/clone")) == clone_calls
    deletes = emulator.calls("POST", "/experiments/delete")
    assert len(deletes) == delete_calls
    if delete_calls:
        assert deletes[0].body["data"]["attributes"]["experiment_ids"] == EXPERIMENT_IDS
        assert all(emulator.experiments[i].deleted_at for i in EXPERIMENT_IDS)
