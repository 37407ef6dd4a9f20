"""AWS calls with bounded waits: a hanging AWS service costs a batch seconds, never the Lambda's deadline, and
every record of a batch has its own connection to each service."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmobs_actions import handler
from local.lambda_context import LambdaContext
from local.poller import Poller
from local.runtime_api import LambdaRuntime
from local.strict_aws import AwsFault
from tests.conftest import Aws, clone_action, sqs_event


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
