"""Shared fixtures: moto in server mode, the Datadog emulator, a Lambda context, and the function's environment."""

from __future__ import annotations

import fcntl
import io
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from llmobs_actions import handler, observability
from local.datadog_emulator import DatadogEmulator
from local.lambda_context import LambdaContext
from local.poller import sqs_record
from local.servers import leftovers, local_threads, running_servers
from local.stack import (
    API_KEY,
    APP_KEY,
    AWS_TEST_ENVIRONMENT,
    DATASET_ID,
    EXPERIMENT_IDS,
    PROJECT_ID,
    SECRET_ID,
    AwsResources,
    LocalAws,
    create_resources,
    function_environment,
    reset_aws,
    seed,
    start_aws,
)

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"

__all__ = ["API_KEY", "APP_KEY", "DATASET_ID", "EXPERIMENT_IDS", "PROJECT_ID", "SECRET_ID"]
QUEUE_NAME = "llmobs-actions-dev-actions"


FakeLambdaContext = LambdaContext


class Aws(AwsResources):
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


def computed_once(tmp_path_factory: pytest.TempPathFactory, name: str, compute: Callable[[], Any]) -> Any:
    """What `compute` returns (JSON), computed by one worker of this test run and read by the others.

    The template's translation and checkov's report cost seconds of CPU each: six xdist workers computing
    them six times would cost more than the tests that read them.
    """
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # this run's, not an earlier run's
    path = shared / f"{name}.json"
    with (shared / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return json.loads(path.read_text())
        value = compute()
        path.write_text(json.dumps(value))
        return value


def _child_processes() -> set[int]:
    """This process's children that have not been waited for (Linux's /proc)."""
    children: set[int] = set()
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as listed:
                children |= {int(pid) for pid in listed.read().split()}
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
    return children


@pytest.fixture(autouse=True)
def nothing_of_the_local_stack_outlives_its_test() -> Iterator[None]:
    """Fails a test that leaves a server, a thread or a process of the local stack running after its teardown.

    Set up before every other function fixture of the test (an autouse fixture of the outermost conftest),
    so it looks after all of them are torn down. An idle keep-alive connection of a server that was running
    before the test (the session's AWS front) may stay: its client may use it again.
    """
    servers, threads, children = running_servers(), local_threads(), _child_processes()
    yield
    deadline = time.monotonic() + 2  # a thread told to end may still be taking its last step
    while True:
        left = leftovers(servers, threads) + [f"process {pid}" for pid in sorted(_child_processes() - children)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, f"the test left the local stack running: {', '.join(left)}"


@pytest.fixture(scope="session")
def local_aws() -> Iterator[LocalAws]:
    """moto behind the strict front: every test's AWS refuses what AWS refuses."""
    started = start_aws()
    yield started
    started.stop()


@pytest.fixture(scope="session")
def moto_endpoint(local_aws: LocalAws) -> str:
    return local_aws.endpoint  # the front's: no test talks to moto past it


@pytest.fixture
def aws(local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for name, value in (AWS_TEST_ENVIRONMENT | {"AWS_ENDPOINT_URL": local_aws.endpoint}).items():
        monkeypatch.setenv(name, value)
    reset_aws(local_aws.endpoint)
    yield Aws(**vars(create_resources(local_aws.endpoint, visibility_timeout=1, front=local_aws.front)))
    local_aws.front.end_activity()  # its move tasks, settling rules and hung calls end with the test


@pytest.fixture
def emulator() -> Iterator[DatadogEmulator]:
    with DatadogEmulator(api_key=API_KEY, app_key=APP_KEY) as emulator:
        seed(emulator)
        yield emulator


@pytest.fixture
def function_env(aws: Aws, emulator: DatadogEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in function_environment(aws, emulator).items():
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
