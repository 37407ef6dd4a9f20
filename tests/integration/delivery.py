"""Handing one message to the function as Lambda would, and reading the result events it announced."""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from llmobs_actions import handler
from tests.conftest import ROOT, Aws, FakeLambdaContext

RESULT_SCHEMA = jsonschema.Draft4Validator(json.loads((ROOT / "schemas" / "result-event.v1.schema.json").read_text()))


def handle(aws: Aws, context: FakeLambdaContext, body: object, receive_count: int | None = None) -> dict[str, Any]:
    """Send `body` to the actions queue and hand its delivery to the function, as Lambda would.

    The message is then deleted whatever the outcome: a test that wants a later receive sends it again
    (with `receive_count`), so that no earlier message can come back in its place.
    """
    record = aws.send_and_receive(body if isinstance(body, str) else json.dumps(body))
    if receive_count is not None:
        record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    response: dict[str, Any] = handler.lambda_handler({"Records": [record]}, context)
    aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=record["receiptHandle"])
    return response


def published(aws: Aws) -> list[dict[str, Any]]:
    """The result events delivered since the last call, each checked against the published schema first,
    as a consumer using the registry's code bindings would read it."""
    events = aws.result_events()
    for event in events:
        RESULT_SCHEMA.validate(event)
    return events
