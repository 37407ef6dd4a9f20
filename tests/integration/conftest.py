"""Integration fixtures: the poller playing Lambda's event source mapping over the local stack."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable, Collection, Iterator
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


class _SecretScanner:
    """Checks every text it is shown for the Datadog keys and the task tokens a test issued, keeping only the
    places it found one: nothing else is kept, so a long test's memory does not grow with its log."""

    def __init__(self, tokens: Callable[[], Collection[str]]) -> None:
        self._tokens = tokens
        self.leaks: dict[str, set[str]] = {}  # where -> what kind of secret appeared there

    def scan(self, where: str, text: str) -> None:
        if any(key in text for key in KEYS):
            self.leaks.setdefault(where, set()).add("a Datadog key")
        # A task token is a capability too (whoever holds one completes the task). A dead-lettered body
        # keeps the producer's message as it came, token included, so that a redrive can still answer.
        if where != "dead-letter queue" and any(token in text for token in self._tokens()):
            self.leaks.setdefault(where, set()).add("a task token")


class _ScanningStream(io.TextIOBase):
    """The function's log stream, passed on unchanged, each write shown to the scanner."""

    def __init__(self, stream: IO[str], scanner: _SecretScanner) -> None:
        self.stream, self.scanner = stream, scanner

    def write(self, text: str) -> int:
        self.scanner.scan("function log", text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


class _ScanningHandler(logging.Handler):
    """Every log record of the process, DEBUG included (botocore, urllib3, ...), formatted and scanned."""

    def __init__(self, scanner: _SecretScanner) -> None:
        super().__init__(level=logging.DEBUG)
        self.scanner = scanner

    def emit(self, record: logging.LogRecord) -> None:
        self.scanner.scan("log records", self.format(record))


@pytest.fixture(autouse=True)
def keys_never_leak(request: pytest.FixtureRequest) -> Iterator[None]:
    """Scans everything the function wrote during the test (its log lines, every log record at every level,
    the DLQ's attributes and bodies) for the Datadog keys and the task tokens the test issued.

    Records are scanned at the most talkative level, botocore's included, yet pytest shows a failing test's
    log at WARNING only (pyproject's log_level): a failure reads as its assertion and a few lines.
    """

    def tokens() -> Collection[str]:
        aws = request.node.funcargs.get("aws")
        return aws.front.task_tokens.issued() if aws is not None and aws.front else ()

    scanner = _SecretScanner(tokens)
    root = logging.getLogger()
    scanning, level = _ScanningHandler(scanner), root.level
    root.addHandler(scanning)
    root.setLevel(logging.DEBUG)
    log_handler = observability.logger.registered_handler
    assert isinstance(log_handler, logging.StreamHandler)
    previous = log_handler.setStream(_ScanningStream(log_handler.stream, scanner))
    yield
    log_handler.setStream(previous)
    root.removeHandler(scanning)
    root.setLevel(level)
    aws = request.node.funcargs.get("aws")
    if aws is not None:  # torn down already, but its queues live on in moto until the next test
        letters = aws.dead_letters()
        scanner.scan("dead-letter queue", json.dumps(letters))
        scanner.scan("dead-letter attributes", json.dumps([letter["attributes"] for letter in letters]))
    assert not scanner.leaks, f"secrets appeared: {scanner.leaks}"


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
