"""Lambda OnFailure records: an asynchronous invocation that failed for good reaches the DLQ as an invocation
record, not as its event. Redriven through the queue or passed in directly, the record's event is processed
exactly as the original, under the same idempotency key; `dlq list` tells every kind of dead letter apart."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmobs_actions import handler
from llmobs_actions.cli import main
from local.datadog_emulator import DatadogEmulator
from local.lambda_async import failure_record, invoke_async
from local.lambda_context import LambdaContext
from local.poller import Poller
from tests.conftest import Aws, clone_action


def eventbridge_event(detail: dict[str, Any], event_id: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "LLMObs Action",
        "source": "llmobs.actions",
        "account": "123456789012",
        "time": "2026-12-01T03:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def invoke(event: Any) -> Any:
    return handler.lambda_handler(event, LambdaContext())


def test_a_failed_asynchronous_invocation_redriven_from_the_dlq_is_done(
    aws: Aws, emulator: DatadogEmulator, poller: Poller
) -> None:
    # GIVEN a rule invoked the function directly while Datadog was down: Lambda tried it three times and
    # sent its invocation record to the DLQ (the template's EventInvokeConfig)
    emulator.outage(3600)
    event = eventbridge_event(clone_action(name="after the async failure"), "evt-async-1")
    invoke_async(
        invoke,
        event,
        aws.values.async_maximum_retry_attempts,
        lambda record: aws.sqs.send_message(QueueUrl=aws.dlq_url, MessageBody=record),
    )
    [record] = aws.dead_letters()
    assert json.loads(record["body"])["requestContext"]["condition"] == "RetriesExhausted"
    emulator.clear_faults()  # Datadog is back

    # WHEN an operator redrives the DLQ to the queue (a move task copies bodies unchanged)
    aws.sqs.delete_message(
        QueueUrl=aws.dlq_url,
        ReceiptHandle=aws.sqs.receive_message(QueueUrl=aws.dlq_url)["Messages"][0]["ReceiptHandle"],
    )
    message_id = aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=record["body"])["MessageId"]
    assert poller.run_until_empty(timeout_seconds=20)

    # THEN the action it carried is done, not dead-lettered as invalid
    assert poller.deliveries[message_id].responses == ["done"]
    assert len(emulator.datasets_named("after the async failure")) == 1
    assert aws.dead_letters() == []


def test_a_record_passed_in_directly_is_processed_as_its_event(
    aws: Aws, emulator: DatadogEmulator, function_env: None
) -> None:
    record = failure_record(eventbridge_event(clone_action(name="direct record"), "evt-async-2"), Exception("x"), 3)
    assert invoke(record)["status"] == "done"
    assert len(emulator.datasets_named("direct record")) == 1


def test_a_record_of_an_event_that_did_succeed_meanwhile_is_a_duplicate(
    aws: Aws, emulator: DatadogEmulator, poller: Poller
) -> None:
    # GIVEN the event was done (a later delivery of it succeeded), and a record of an earlier failure exists
    event = eventbridge_event(clone_action(name="done once"), "evt-async-3")
    assert invoke(event)["status"] == "done"
    record = json.dumps(failure_record(event, Exception("timed out"), 3, condition="EventAgeExceeded"))

    # WHEN the record comes back through the queue
    message_id = aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=record)["MessageId"]
    assert poller.run_until_empty(timeout_seconds=20)

    # THEN it is acknowledged under the event's id, without a second clone
    assert poller.deliveries[message_id].responses == ["done"]
    assert len(emulator.calls("POST", "/clone")) == 1
    assert aws.dead_letters() == []


def test_dlq_list_tells_every_kind_of_dead_letter_apart(
    aws: Aws, poller: Poller, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN one message of each origin in the DLQ
    aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody="{not json")
    assert poller.run_until_empty(timeout_seconds=20)  # the function's, with its reason
    event = eventbridge_event(clone_action(name="x"), "evt-4")
    record = failure_record(event, RuntimeError("Datadog unreachable"), 3, condition="EventAgeExceeded")
    aws.sqs.send_message(QueueUrl=aws.dlq_url, MessageBody=json.dumps(record))

    def undeliverable(arn_name: str, arn: str) -> dict[str, dict[str, str]]:
        values = {"ERROR_CODE": "SQS.AccessDenied", "ERROR_MESSAGE": "not allowed", arn_name: arn}
        return {name: {"DataType": "String", "StringValue": value} for name, value in values.items()}

    rule = "arn:aws:events:us-east-1:123456789012:rule/llmobs-actions"
    schedule = "arn:aws:scheduler:us-east-1:123456789012:schedule/default/nightly"
    aws.sqs.send_message(QueueUrl=aws.dlq_url, MessageBody="{}", MessageAttributes=undeliverable("RULE_ARN", rule))
    aws.sqs.send_message(
        QueueUrl=aws.dlq_url, MessageBody="{}", MessageAttributes=undeliverable("SCHEDULE_ARN", schedule)
    )
    aws.sqs.send_message(QueueUrl=aws.dlq_url, MessageBody=json.dumps(clone_action()))  # moved by SQS

    # WHEN an operator lists it
    assert main(["dlq", "list", "--dlq-url", aws.dlq_url]) == 0
    rows = capsys.readouterr().out.splitlines()

    # THEN each says where it came from and why
    assert any(" function " in r and "invalid" in r and "body is not JSON" in r for r in rows)
    assert any(" lambda " in r and "EventAgeExceeded" in r and "RuntimeError: Datadog unreachable" in r for r in rows)
    assert any(" eventbridge " in r and "SQS.AccessDenied" in r and rule in r for r in rows)
    assert any(" scheduler " in r and "SQS.AccessDenied" in r and schedule in r for r in rows)
    assert any(" sqs " in r and "moved by SQS after maxReceiveCount" in r for r in rows)
