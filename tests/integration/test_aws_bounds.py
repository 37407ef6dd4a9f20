"""AWS calls with bounded waits: a hanging AWS service costs a batch seconds, never the Lambda's deadline, and
every record of a batch has its own connection to each service."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from llmobs_actions import handler
from local.datadog_emulator import DatadogEmulator, Fault
from local.lambda_context import LambdaContext
from local.poller import Poller
from local.runtime_api import LambdaRuntime
from local.strict_aws import AwsFault
from tests.conftest import PROJECT_ID, Aws, clone_action, sqs_event


def test_a_hanging_secrets_manager_fails_the_batch_in_time_instead_of_timing_out(
    aws: Aws, function_env: None, tmp_path: Path
) -> None:
    # GIVEN Secrets Manager accepts connections and never answers, and a 15-second Lambda
    assert aws.front is not None
    aws.front.inject(AwsFault(target="secretsmanager.GetSecretValue", hang_seconds=60, times=100))
    for n in range(10):
        aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=json.dumps(clone_action(name=f"hang {n}")))

    # WHEN a batch of ten arrives
    with (tmp_path / "function.log").open("w") as log, LambdaRuntime({}, 15, log=log) as runtime:
        poller = Poller(aws.sqs, aws.queue_url, aws.queue_arn, runtime.invoke, batch_size=10)
        assert poller.poll_once() == 10

    # THEN the invocation returns before its deadline, every record reported for a retry: none was lost
    # to a killed sandbox, and each comes back when its back-off ends
    assert runtime.cold_starts == 1, "the sandbox was not killed at its deadline"
    assert all(d.responses == ["retry"] for d in poller.deliveries.values())


def test_every_record_of_a_big_batch_has_its_own_aws_connection(
    aws: Aws, function_env: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a deployment with BatchSize 40 (the template sets MAX_WORKERS to it)
    monkeypatch.setenv("MAX_WORKERS", "40")
    handler.processor.cache_clear()
    # clones (each writes its DynamoDB record) and invalid ones (each a DLQ send), all at once
    event = sqs_event(*(clone_action(name=f"wide {n}") if n % 2 else "{not json" for n in range(40)))

    # WHEN they run
    response = handler.lambda_handler(event, LambdaContext())

    # THEN all settle, and no AWS client had to drop connections for want of room in its pool
    assert response == {"batchItemFailures": []}
    assert len(aws.dead_letters()) == 20
    assert "Connection pool is full" not in caplog.text


@pytest.mark.parametrize(
    "hanging",
    [
        "AWSEvents.PutEvents",
        "AmazonSQS.SendMessage",
        "AmazonSQS.ChangeMessageVisibility",
        "AWSStepFunctions.SendTaskSuccess",
    ],
)
def test_a_hanging_aws_call_after_the_actions_never_takes_the_invocation_past_its_deadline(
    hanging: str, aws: Aws, emulator: DatadogEmulator, function_env: None, tmp_path: Path
) -> None:
    # GIVEN a batch that needs every AWS call of the settling: clones (result events), one waited for by a state
    # machine (a task callback), messages that can never succeed (DLQ sends), one refused for now (a retry delay)
    assert aws.front is not None
    token = aws.front.task_tokens.issue(timeout_seconds=300)
    bodies: list[object] = [clone_action(name=f"settled {n}") for n in range(5)]
    bodies += [clone_action(name="for a state machine", task_token=token), "{not json", "{nor this"]
    bodies += [clone_action(dataset_id="comes-back-later", name="later")]
    emulator.add_dataset(PROJECT_ID, "comes back later", dataset_id="comes-back-later")
    emulator.inject(Fault(status=503, path_contains="comes-back-later", times=100))
    sent = {
        aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=b if isinstance(b, str) else json.dumps(b))[
            "MessageId"
        ]
        for b in bodies
    }
    # ...one of those operations accepting calls and never answering, and a 15-second Lambda
    assert aws.front is not None
    aws.front.inject(AwsFault(target=hanging, hang_seconds=120, times=1000, code="InternalError", status=500))

    # WHEN the batch arrives
    with (
        (tmp_path / "function.log").open("w") as log,
        LambdaRuntime({"RETRY_BASE_DELAY_SECONDS": "30"}, 15, log=log) as runtime,
    ):
        poller = Poller(aws.sqs, aws.queue_url, aws.queue_arn, runtime.invoke, batch_size=10)
        started = time.monotonic()
        assert poller.poll_once() == len(bodies)
        took = time.monotonic() - started

    # THEN the invocation returned before its deadline (the sandbox was never killed), and no message is both
    # in the DLQ and back in its queue: what could not be settled in time is left to its retry
    assert aws.front.calls[hanging] > 0, "the hanging operation was called"
    assert runtime.cold_starts == 1, "the sandbox was killed at its deadline"
    assert took < 15
    dead = {letter["attributes"]["source_message_id"] for letter in aws.dead_letters()}
    retried = {m for m, d in poller.deliveries.items() if d.responses == ["retry"]}
    assert dead.isdisjoint(retried)
    assert dead | retried | {m for m, d in poller.deliveries.items() if d.deleted} == sent
