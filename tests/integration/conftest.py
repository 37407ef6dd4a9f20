"""Integration fixtures: the poller playing Lambda's event source mapping over the local stack."""

from __future__ import annotations

import pytest

from llmobs_actions import handler
from local.poller import Poller, in_process
from tests.conftest import Aws


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
