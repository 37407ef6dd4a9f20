"""The failure policy, row by row as DESIGN.md section 4 lays it out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from llmobs_actions.aws_clients import OutOfTimeError
from llmobs_actions.contract import InvalidAction
from llmobs_actions.datadog import DatadogHTTPError, DatadogNoAnswerError, DatadogUnreachableError, RateLimit
from llmobs_actions.failures import (
    POLICY,
    AuthRejectedError,
    Backoff,
    Disposition,
    ErrorClass,
    Failure,
    IdempotencyBusyError,
    IdempotencyConflictError,
    IdempotencyStoreError,
    classify,
    dead_letter_attributes,
)
from llmobs_actions.keys import SecretMisconfiguredError, SecretUnavailableError
from llmobs_actions.messages import InboundMessage


def http(status: int, reset: float | None = None) -> DatadogHTTPError:
    return DatadogHTTPError("clone_dataset", status, "Generic Error: nope", RateLimit(reset_seconds=reset))


@pytest.mark.parametrize(
    ("error", "error_class", "disposition"),
    [
        (InvalidAction("body is not JSON"), ErrorClass.INVALID, Disposition.DEAD_LETTER),
        (http(400), ErrorClass.REJECTED, Disposition.DEAD_LETTER),
        (http(404), ErrorClass.REJECTED, Disposition.DEAD_LETTER),
        (http(409), ErrorClass.REJECTED, Disposition.DEAD_LETTER),
        (http(413), ErrorClass.REJECTED, Disposition.DEAD_LETTER),
        (http(422), ErrorClass.REJECTED, Disposition.DEAD_LETTER),
        (http(405), ErrorClass.REJECTED, Disposition.DEAD_LETTER),
        (http(401), ErrorClass.AUTH, Disposition.RETRY),
        (http(403), ErrorClass.AUTH, Disposition.RETRY),
        (AuthRejectedError(403, "Forbidden"), ErrorClass.AUTH, Disposition.RETRY),
        (http(429, reset=7), ErrorClass.THROTTLED, Disposition.RETRY),
        (http(408), ErrorClass.TRANSIENT, Disposition.RETRY),
        (http(500), ErrorClass.TRANSIENT, Disposition.RETRY),
        (http(502), ErrorClass.TRANSIENT, Disposition.RETRY),
        (http(503), ErrorClass.TRANSIENT, Disposition.RETRY),
        (http(504), ErrorClass.TRANSIENT, Disposition.RETRY),
        (http(302), ErrorClass.TRANSIENT, Disposition.RETRY),
        (DatadogUnreachableError("clone_dataset", "connection refused"), ErrorClass.TRANSIENT, Disposition.RETRY),
        (DatadogNoAnswerError("clone_dataset", "read timeout"), ErrorClass.AMBIGUOUS, Disposition.RETRY),
        (SecretUnavailableError("throttled"), ErrorClass.TRANSIENT, Disposition.RETRY),
        (SecretMisconfiguredError("no api_key"), ErrorClass.CONFIGURATION, Disposition.RETRY),
        (OutOfTimeError("no time"), ErrorClass.OUT_OF_TIME, Disposition.RETRY),
        (ZeroDivisionError("a bug"), ErrorClass.INTERNAL, Disposition.RETRY),
        (IdempotencyConflictError("key reused"), ErrorClass.REJECTED, Disposition.DEAD_LETTER),
        (IdempotencyBusyError("busy"), ErrorClass.IN_PROGRESS, Disposition.RETRY),
        (IdempotencyStoreError("dynamodb down"), ErrorClass.TRANSIENT, Disposition.RETRY),
    ],
)
def test_each_failure_has_its_class_and_disposition(
    error: Exception, error_class: ErrorClass, disposition: Disposition
) -> None:
    failure = classify(error)
    assert (failure.error_class, failure.disposition) == (error_class, disposition)


def test_only_failures_that_can_never_succeed_are_dead_lettered_at_once() -> None:
    assert {c for c, d in POLICY.items() if d is Disposition.DEAD_LETTER} == {ErrorClass.INVALID, ErrorClass.REJECTED}
    assert set(POLICY) == set(ErrorClass)


def test_datadog_failures_keep_status_and_detail() -> None:
    failure = classify(http(404))
    assert (failure.http_status, failure.datadog_error) == (404, "Generic Error: nope")
    assert classify(http(429, reset=7)).retry_after_seconds == 7


def test_a_throttled_message_waits_for_the_reset_bounded() -> None:
    backoff = Backoff(base_seconds=10, factor=2, max_seconds=900)
    throttled = Failure(ErrorClass.THROTTLED, "429", 429, retry_after_seconds=30)
    delays = {backoff.delay(throttled, 1) for _ in range(50)}
    assert all(d is not None and 30 <= d <= 31 for d in delays)
    huge = Failure(ErrorClass.THROTTLED, "429", 429, retry_after_seconds=86_400)
    assert backoff.delay(huge, 1) == 900
    no_header = Failure(ErrorClass.THROTTLED, "429", 429)
    assert 10 <= (backoff.delay(no_header, 1) or 0) <= 11


def test_transient_failures_back_off_exponentially_with_the_receive_count() -> None:
    backoff = Backoff(base_seconds=10, factor=2, max_seconds=900)
    transient = Failure(ErrorClass.TRANSIENT, "503", 503)
    delays = [backoff.delay(transient, n) or 0 for n in (1, 2, 3, 4)]
    assert [8 <= delays[0] <= 10, 16 <= delays[1] <= 20, 32 <= delays[2] <= 40, 64 <= delays[3] <= 80] == [True] * 4
    assert (backoff.delay(transient, 30) or 0) <= 900


def test_the_default_backoff_outlives_an_hour_long_outage_within_sqs_limits() -> None:
    # GIVEN the template's defaults: five receives, the last one the function's own
    backoff, receives = Backoff(), 5
    transient = Failure(ErrorClass.TRANSIENT, "503", 503)
    # THEN the four waits before the last receive add up to more than an hour, however the jitter falls
    assert backoff.survives_seconds(receives) >= 3600
    shortest = [min(backoff.delay(transient, n) or 0 for _ in range(200)) for n in range(1, receives)]
    assert sum(shortest) >= 3600
    # ...and no wait exceeds SQS's 12-hour visibility ceiling, the whole fitting the 4-day retention
    assert all((backoff.delay(transient, n) or 0) <= 43_200 for n in range(1, 100))
    assert backoff.nominal(1) <= 60, "a blip is still retried within a minute"
    assert sum(backoff.nominal(n) for n in range(1, receives)) < 345_600


def test_out_of_time_and_disabled_backoff_leave_visibility_alone() -> None:
    out_of_time = Failure(ErrorClass.OUT_OF_TIME, "no time")
    assert Backoff().delay(out_of_time, 3) is None
    transient = Failure(ErrorClass.TRANSIENT, "503", 503)
    assert Backoff(base_seconds=0).delay(transient, 3) is None


def test_dead_letter_attributes_carry_the_whole_reason() -> None:
    message = InboundMessage("m-1", "{}", receive_count=2, source_arn="arn:aws:sqs:us-east-1:1:q", receipt_handle="h")
    failure = classify(http(404))
    attributes = dead_letter_attributes(failure, message, now=datetime(2026, 11, 22, 3, 0, tzinfo=UTC))
    assert attributes == {
        "error_class": "rejected",
        "error_message": "clone_dataset: Datadog answered 404: Generic Error: nope",
        "http_status": "404",
        "datadog_error": "Generic Error: nope",
        "source_message_id": "m-1",
        "source_queue_arn": "arn:aws:sqs:us-east-1:1:q",
        "receive_count": "2",
        "failed_at": "2026-11-22T03:00:00+00:00",
    }
    assert len(attributes) <= 10  # SQS allows ten message attributes


def test_invalid_messages_have_no_http_attributes() -> None:
    attributes = dead_letter_attributes(classify(InvalidAction("nope")), InboundMessage("m", "x"))
    assert "http_status" not in attributes
    assert "datadog_error" not in attributes


def test_a_message_whose_key_is_held_comes_back_no_later_than_the_holder_s_deadline() -> None:
    backoff = Backoff()  # 30 s, x6, at most 1 h
    held_briefly = classify(IdempotencyBusyError("busy", held_for_seconds=5))
    assert Backoff().delay(held_briefly, 4) == 6  # not the hour its fourth receive would wait
    held_long = classify(IdempotencyBusyError("busy", held_for_seconds=900))
    assert 24 <= (backoff.delay(held_long, 1) or 0) <= 30  # the usual back-off when the holder may work on
