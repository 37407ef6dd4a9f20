"""Every FunctionTimeout the template allows leaves the function, with its default settings, time for its calls."""

from __future__ import annotations

from typing import Any

import pytest

from llmobs_actions import handler
from llmobs_actions.settings import Settings
from local.datadog_emulator import DatadogEmulator
from local.lambda_context import LambdaContext
from local.stack import function_environment
from local.template import TEMPLATE, load
from tests.conftest import Aws, clone_action, sqs_event
from tests.template.conftest import resolved

ALLOWED_TIMEOUTS = [str(t) for t in load(TEMPLATE)["Parameters"]["FunctionTimeout"]["AllowedValues"]]


@pytest.mark.parametrize("timeout", ALLOWED_TIMEOUTS)
def test_the_default_call_budget_fits_every_allowed_timeout(translated: dict[str, Any], timeout: str) -> None:
    function = resolved(translated, FunctionTimeout=timeout)["ActionsFunction"]["Properties"]
    variables = {k: v for k, v in function["Environment"]["Variables"].items() if isinstance(v, str)}
    settings = Settings.from_environ(variables | {"DD_SECRET_ID": "s", "DEAD_LETTER_QUEUE_URL": "q"})
    deadline_ms = int(function["Timeout"]) * 1000
    assert settings.call_budget_ms < deadline_ms, "a record could never start a call"
    # the first call of an invocation may wait for its answer at least a few seconds, never past the deadline
    read = settings.read_timeout_for(deadline_ms)
    assert 2 <= read <= deadline_ms / 1000 - settings.connect_timeout_seconds


@pytest.mark.parametrize("timeout", ALLOWED_TIMEOUTS)
def test_a_clone_is_done_within_every_allowed_timeout(
    translated: dict[str, Any],
    timeout: str,
    aws: Aws,
    emulator: DatadogEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the function as the template configures it for this timeout, Datadog's timeouts at their defaults
    variables = resolved(translated, FunctionTimeout=timeout)["ActionsFunction"]["Properties"]["Environment"]
    local = function_environment(aws, emulator)
    for name in ("DD_READ_TIMEOUT_SECONDS", "DD_CONNECT_TIMEOUT_SECONDS"):
        local.pop(name)
    for name, value in ({k: v for k, v in variables["Variables"].items() if isinstance(v, str)} | local).items():
        monkeypatch.setenv(name, value)
    handler.processor.cache_clear()
    emulator.latency_seconds = 0.5

    # WHEN a clone arrives in an invocation of exactly that timeout
    response = handler.lambda_handler(
        sqs_event(clone_action(name=f"within {timeout}")), LambdaContext(remaining_ms=int(timeout) * 1000)
    )
    handler.processor.cache_clear()

    # THEN it is done
    assert response == {"batchItemFailures": []}
    assert len(emulator.datasets_named(f"within {timeout}")) == 1
