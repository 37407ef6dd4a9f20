"""Integration fixtures: the poller playing Lambda's event source mapping over the local stack."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from typing import IO

import pytest

from llmobs_actions import handler, observability
from local.poller import Poller, in_process
from local.servers import thread
from tests.conftest import API_KEY, APP_KEY, Aws


@pytest.fixture
def poller(aws: Aws, function_env: None, monkeypatch: pytest.MonkeyPatch) -> Poller:
    # Retries come back after the queue's (shortened, 1 s) visibility timeout instead of backing off.
    monkeypatch.setenv("RETRY_BASE_DELAY_SECONDS", "0")
    values = aws.values
    return Poller(
        aws.sqs,
        aws.queue_url,
        aws.queue_arn,
        in_process(handler.lambda_handler, values.function_timeout_seconds),
        batch_size=values.batch_size,
    )


# Every key a test of this suite puts into a secret: none may show up in what the function writes.
KEYS = (API_KEY, APP_KEY, "rotated-api-key", "rotated-app-key", "next-api-key", "next-app-key")


class _Tee(io.TextIOBase):
    def __init__(self, *streams: IO[str]) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


@pytest.fixture(autouse=True)
def keys_never_leak(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Scans everything the function wrote during the test (its log lines, every log record, the DLQ's
    attributes and bodies) for the Datadog keys and the task tokens the test issued."""
    caplog.set_level(logging.DEBUG)  # the most talkative setting, botocore included
    captured = io.StringIO()
    log_handler = observability.logger.registered_handler
    assert isinstance(log_handler, logging.StreamHandler)
    previous = log_handler.setStream(_Tee(log_handler.stream, captured))
    yield
    log_handler.setStream(previous)
    texts = {"function log": captured.getvalue(), "log records": caplog.text}
    aws = request.node.funcargs.get("aws")
    tokens: tuple[str, ...] = ()
    if aws is not None:  # torn down already, but its queues live on in moto until the next test
        letters = aws.dead_letters()
        texts["dead-letter queue"] = json.dumps(letters)
        texts["dead-letter attributes"] = json.dumps([letter["attributes"] for letter in letters])
        tokens = tuple(aws.front.task_tokens.issued()) if aws.front else ()
    for where, text in texts.items():
        leaked = [key for key in KEYS if key in text]
        assert not leaked, f"a Datadog key appeared in the {where}"
        # A task token is a capability too (whoever holds one completes the task). A dead-lettered body
        # keeps the producer's message as it came, token included, so that a redrive can still answer.
        if where != "dead-letter queue":
            assert not [token for token in tokens if token in text], f"a task token appeared in the {where}"


@pytest.fixture
def background_poller(poller: Poller) -> Iterator[Poller]:
    """Lambda's event source mapping, in a thread, for as long as the test runs."""
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            poller.poll_once(wait_seconds=1)

    polling = thread(run, "poller")
    yield poller
    stop.set()
    polling.join(timeout=10)
