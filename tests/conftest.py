"""Shared fixtures: moto in server mode, the Datadog emulator, a Lambda context, and the function's environment."""

from __future__ import annotations

import io
import json
import logging
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from llmobs_actions import handler, observability
from local.datadog_emulator import DatadogEmulator

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"

# The ids the files in events/ refer to.
PROJECT_ID = "a33671aa-8a1e-4c3b-9f0e-5d2b6c7e8f90"
DATASET_ID = "9f64e5c7-dc5a-45c8-a17c-1b85f0bec97d"
EXPERIMENT_IDS = ["3fd6b5e0-8910-4b1c-a7d0-5b84de329012", "4ae7c6f1-9a21-4c2d-b8e1-6c95ef43a123"]
QUEUE_NAME = "llmobs-actions-dev-ActionsQueue"
DLQ_NAME = "llmobs-actions-dev-ActionsDeadLetterQueue"
SECRET_ID = "llmobs-actions/datadog"
API_KEY = "0123456789abcdef0123456789abcdef"  # shaped like a real key, so a leak would be recognisable
APP_KEY = "fedcba9876543210fedcba9876543210fedcba98"


@dataclass
class FakeLambdaContext:
    function_name: str = "llmobs-actions-dev-ActionsFunction"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:llmobs-actions-dev-ActionsFunction"
    aws_request_id: str = "52fdfc07-2182-454f-963f-5f0f9a621d72"
    remaining_ms: int = 60_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass
class Aws:
    endpoint: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    sqs: Any = field(repr=False)
    secrets: Any = field(repr=False)

    def dead_letters(self) -> list[dict[str, Any]]:
        """Everything in the DLQ, with attributes flattened to strings (messages stay in the queue)."""
        found: dict[str, dict[str, Any]] = {}
        for _ in range(5):
            response = self.sqs.receive_message(
                QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
            )
            for message in response.get("Messages", []):
                attributes = {k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()}
                found[message["MessageId"]] = {"body": message["Body"], "attributes": attributes}
        return list(found.values())

    def send_and_receive(self, body: str) -> dict[str, Any]:
        """Put a message on the source queue and receive it as Lambda would: returns an SQS event record."""
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)
        message = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=1, AttributeNames=["All"], MessageAttributeNames=["All"]
        )["Messages"][0]
        return sqs_record(message, self.queue_arn)


class LogOutput:
    """What the function's logger printed, as Lambda would ship it to CloudWatch."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """The record Lambda's event source mapping builds from a received SQS message."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    }


def sqs_event(*bodies: object, receive_count: int = 1) -> dict[str, Any]:
    """An SQS event with made-up receipt handles, for tests that need no real queue message."""
    records = []
    for number, body in enumerate(bodies):
        records.append(
            {
                "messageId": f"00000000-0000-4000-8000-{number:012d}",
                "receiptHandle": f"handle-{number}",
                "body": body if isinstance(body, str) else json.dumps(body),
                "attributes": {"ApproximateReceiveCount": str(receive_count)},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{QUEUE_NAME}",
                "awsRegion": "us-east-1",
            }
        )
    return {"Records": records}


def clone_action(**overrides: Any) -> dict[str, Any]:
    return {"action": "clone_dataset", "project_id": PROJECT_ID, "dataset_id": DATASET_ID, "name": "snapshot"} | (
        overrides
    )


def delete_action(**overrides: Any) -> dict[str, Any]:
    return {"action": "delete_experiments", "experiment_ids": list(EXPERIMENT_IDS)} | overrides


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Aws:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_ENDPOINT_URL": moto_endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")).read()  # noqa: S310
    sqs = boto3.client("sqs")
    dlq_url = sqs.create_queue(QueueName=DLQ_NAME)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=QUEUE_NAME,
        Attributes={
            "VisibilityTimeout": "1",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    secrets = boto3.client("secretsmanager")
    secrets.create_secret(Name=SECRET_ID, SecretString=json.dumps({"api_key": API_KEY, "app_key": APP_KEY}))
    return Aws(moto_endpoint, queue_url, queue_arn, dlq_url, sqs, secrets)


@pytest.fixture
def emulator() -> Iterator[DatadogEmulator]:
    with DatadogEmulator(api_key=API_KEY, app_key=APP_KEY) as emulator:
        emulator.add_project("evals", project_id=PROJECT_ID)
        emulator.add_dataset(PROJECT_ID, "golden", records=5, dataset_id=DATASET_ID)
        for number, experiment_id in enumerate(EXPERIMENT_IDS):
            emulator.add_experiment(PROJECT_ID, DATASET_ID, f"run-{number}", experiment_id=experiment_id)
        yield emulator


@pytest.fixture
def function_env(aws: Aws, emulator: DatadogEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The environment the SAM template gives the function, pointed at the local stack."""
    for name, value in {
        "DD_SITE": "datadoghq.com",
        "DD_API_URL": emulator.url,
        "DD_SECRET_ID": SECRET_ID,
        "DEAD_LETTER_QUEUE_URL": aws.dlq_url,
        "DD_READ_TIMEOUT_SECONDS": "2",
        "DD_CONNECT_TIMEOUT_SECONDS": "1",
        "POWERTOOLS_SERVICE_NAME": "llmobs-actions",
        "POWERTOOLS_METRICS_NAMESPACE": "LLMObsActions",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    handler.processor.cache_clear()
    yield
    handler.processor.cache_clear()


@pytest.fixture
def log_output() -> Iterator[LogOutput]:
    output = LogOutput()
    log_handler = observability.logger.registered_handler
    assert isinstance(log_handler, logging.StreamHandler)
    previous = log_handler.setStream(output.stream)
    yield output
    log_handler.setStream(previous)


@pytest.fixture
def context() -> FakeLambdaContext:
    return FakeLambdaContext()
