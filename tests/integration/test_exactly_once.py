"""Exactly once, decided by the key: whatever brings a request back after its first attempt lost its answer,
exactly one dataset results (the key's record says what that attempt asked for), and only the dataset that
attempt can have made is ever adopted.

The matrix: every way a request comes back (the same message retried, a producer resend under the same key,
an EventBridge duplicate, a filtered `dlq redrive`, a move task, Lambda's retry of a direct asynchronous
invocation) against every way a clone's answer is lost after Datadog made it (a 502 after the work, the
answer after the read timeout, the sandbox killed in the middle of the call).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from llmobs_actions import handler
from llmobs_actions.cli import main
from llmobs_actions.handler import RetryLaterError
from local.datadog_emulator import DatadogEmulator, Fault
from local.lambda_context import LambdaContext
from local.poller import Poller, in_process, sqs_record
from local.runtime_api import InvocationError, LambdaRuntime
from local.servers import thread
from tests.conftest import PROJECT_ID, Aws, clone_action

NAME = "exactly once"
FAULTS = ("5xx after the work", "answer after the read timeout", "sandbox killed mid-call")
PATHS = (
    "same message retried",
    "producer resend",
    "eventbridge duplicate",
    "filtered redrive",
    "move task",
    "async retry",
)


@dataclass
class Delivery:
    """How the function is invoked in one cell: in this process, or in a sandbox that can be killed."""

    aws: Aws
    runtime: LambdaRuntime | None
    killed: list[bool] = field(default_factory=list)

    def invoke(self, event: dict[str, Any], request_id: str | None = None) -> Any:
        if self.runtime is not None:
            return self.runtime.invoke(event, request_id)
        context = LambdaContext(aws_request_id=request_id) if request_id else LambdaContext()
        return handler.lambda_handler(event, context)

    def poller(self) -> Poller:
        invoke = self.invoke if self.runtime is not None else in_process(handler.lambda_handler, 60)
        return Poller(self.aws.sqs, self.aws.queue_url, self.aws.queue_arn, invoke, batch_size=10)

    def first_try(self, body: object, *, then_forget_it: bool = False) -> None:
        """Send `body`, receive it, and give it to the function once (its attempt loses the answer); delete it
        as Lambda does unless reported failed, or anyway when the test wants the request back another way."""
        self.aws.sqs.send_message(QueueUrl=self.aws.queue_url, MessageBody=json.dumps(body))
        message = self.aws.sqs.receive_message(
            QueueUrl=self.aws.queue_url, AttributeNames=["All"], MessageAttributeNames=["All"]
        )["Messages"][0]
        failed = True
        try:
            response = self.invoke({"Records": [sqs_record(message, self.aws.queue_arn)]})
            failed = bool(response["batchItemFailures"])
        except InvocationError:
            self.killed.append(True)
        if then_forget_it or not failed:
            self.aws.sqs.delete_message(QueueUrl=self.aws.queue_url, ReceiptHandle=message["ReceiptHandle"])


def eventbridge_event(detail: dict[str, Any], event_id: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "LLMObs Action",
        "source": "llmobs.actions",
        "time": "2026-12-01T03:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def lose_the_answer(fault: str, emulator: DatadogEmulator, delivery: Delivery) -> threading.Thread | None:
    """Datadog makes the clone, and the function never learns it did; for a killed sandbox, the killer."""
    if fault == "5xx after the work":
        emulator.inject(Fault(status=502, after_work=True, path_contains="/clone"))
        return None
    # the answer comes 5 s late: past the 2 s read timeout, or past the sandbox's life
    emulator.inject(Fault(delay_seconds=5, path_contains="/clone"))
    if fault != "sandbox killed mid-call":
        return None
    runtime = delivery.runtime
    assert runtime is not None

    def kill_during_the_clone() -> None:
        deadline = time.monotonic() + 30
        while not emulator.datasets_named(NAME) and time.monotonic() < deadline:
            time.sleep(0.01)
        runtime.kill()

    return thread(kill_during_the_clone, "probe/killer")


def set_max_receive_count(aws: Aws, count: int) -> None:
    policy = {"deadLetterTargetArn": aws.dlq_arn, "maxReceiveCount": count}
    aws.sqs.set_queue_attributes(QueueUrl=aws.queue_url, Attributes={"RedrivePolicy": json.dumps(policy)})
    handler.processor.cache_clear()  # a new sandbox: the queue's facts read afresh


def deliver_again(path: str, delivery: Delivery, capsys: pytest.CaptureFixture[str]) -> None:
    """The first attempt, then the request back by `path`, until the queue is empty."""
    aws = delivery.aws
    action = clone_action(name=NAME)
    if path == "async retry":
        request_id = str(uuid.uuid4())
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:  # Lambda's tries of one asynchronous event keep its request id
            try:
                delivery.invoke(action, request_id)
                return
            except InvocationError:  # in a sandbox: killed, or the function raised to be retried
                delivery.killed.append(True)
            except RetryLaterError:
                pass
            time.sleep(1)  # Lambda waits between tries (minutes); the killed attempt's deadline passes meanwhile
        raise AssertionError("the asynchronous tries did not succeed")
    if path in ("filtered redrive", "move task"):
        # The last receive dead-letters it: the first, or after a killed sandbox the next (the dead attempt
        # still holds the key then: in_progress). A killed last receive leaves SQS to move the message, without
        # the reasons and the first message's id: what a move task then brings back is a request of its own.
        set_max_receive_count(aws, 1 if delivery.runtime is None else 2)
        delivery.first_try(action)
        poller = delivery.poller()
        deadline = time.monotonic() + 30
        while not aws.dead_letters() and time.monotonic() < deadline:
            poller.poll_once(wait_seconds=1)
        set_max_receive_count(aws, 5)
        if delivery.runtime is not None:
            delivery.runtime.kill()  # its idle sandbox goes too: the next reads the raised MaxReceiveCount
        [letter] = aws.dead_letters()
        redrive = ["dlq", "redrive", "--dlq-url", aws.dlq_url, "--queue-url", aws.queue_url, "--yes"]
        if path == "filtered redrive":
            redrive += ["--error-class", letter["attributes"].get("error_class", "redriven")]
        assert main(redrive) == 0, capsys.readouterr()
    elif path == "same message retried":
        delivery.first_try(action)  # not deleted: it comes back when its visibility runs out
    else:
        body: dict[str, Any]
        if path == "producer resend":
            body = action | {"idempotency_key": "nightly-2026-12-01"}
        else:
            body = eventbridge_event(action, "5b3f3c3e-0000-4000-8000-00000000e001")
        delivery.first_try(body, then_forget_it=True)
        aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=json.dumps(body))  # a new message, same request
    assert delivery.poller().run_until_empty(timeout_seconds=45)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("fault", FAULTS)
def test_a_lost_answer_then_any_redelivery_makes_exactly_one_dataset(
    fault: str,
    path: str,
    aws: Aws,
    emulator: DatadogEmulator,
    function_env: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETRY_BASE_DELAY_SECONDS", "0")  # back after the queue's 1 s visibility
    with contextlib.ExitStack() as stack:
        runtime = None
        if fault == "sandbox killed mid-call":
            # a busy key's message waits its back-off (2 s, then 12 s), no longer than the dead attempt's deadline
            environment = {"MIN_REMAINING_TIME_MS": "500", "RETRY_BASE_DELAY_SECONDS": "2"}
            log = stack.enter_context((tmp_path / "function.log").open("w"))
            # long enough that the delivery after the kill finds the dead attempt's key still held
            runtime = stack.enter_context(LambdaRuntime(environment, 10, log=log))
        delivery = Delivery(aws, runtime)
        killer = lose_the_answer(fault, emulator, delivery)
        deliver_again(path, delivery, capsys)
        if killer is not None:
            killer.join(timeout=35)

    assert len(emulator.datasets_named(NAME)) == 1, "exactly one dataset, whatever brought the request back"
    assert len(emulator.calls("POST", "/clone")) == 1, "the later delivery adopted it instead of cloning"
    assert aws.dead_letters() == []
    if fault == "sandbox killed mid-call":
        assert delivery.killed or path == "async retry", "the sandbox did die in the middle of the clone"


# --- adoption is exact ------------------------------------------------------------------------------------


def retried_after(
    aws: Aws, emulator: DatadogEmulator, poller: Poller, fault: Fault, meanwhile: Callable[[], None]
) -> str:
    """A clone whose first attempt fails with `fault`; `meanwhile` happens; the message comes back (its second
    receive); returns the id of the dataset its result event names."""
    emulator.inject(fault)
    Delivery(aws, None).first_try(clone_action(name=NAME))
    meanwhile()
    handler.processor.cache_clear()  # another sandbox: no rate budget learnt from the first attempt's 429
    assert poller.run_until_empty(timeout_seconds=20)
    [event] = [e for e in aws.result_events() if e["detail-type"] == "LLMObs Action Succeeded"]
    assert event["detail"]["receive_count"] == 2
    return str(event["detail"]["result"]["new_dataset_id"])


@pytest.mark.parametrize(
    "fault",
    [
        Fault(status=503, path_contains="/clone"),  # "unable to handle the request": nothing was made
        Fault(status=429, path_contains="/clone", headers={"X-RateLimit-Reset": "30"}),
    ],
    ids=["a clean 503", "a 429"],
)
def test_after_a_refusal_the_retry_clones_and_never_adopts_another_s_dataset(
    fault: Fault, aws: Aws, emulator: DatadogEmulator, poller: Poller, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_RETRY_DELAY_SECONDS", "1")  # the 429's 30 s reset, shortened for the test
    # GIVEN a clone Datadog refused before making anything, and someone else then making one of that name
    others: list[str] = []

    def someone_else_makes_one() -> None:
        others.append(emulator.add_dataset(PROJECT_ID, NAME, records=1).id)

    # WHEN the message comes back
    new_id = retried_after(aws, emulator, poller, fault, someone_else_makes_one)

    # THEN the retry makes its own dataset: the other one is not its, whatever its name and its time
    assert new_id != others[0]
    assert len(emulator.datasets_named(NAME)) == 2
    assert len([r for r in emulator.calls("POST", "/clone") if r.status == 200]) == 1


def test_a_dataset_of_the_name_made_after_the_attempt_ended_is_not_adopted(
    aws: Aws, emulator: DatadogEmulator, poller: Poller
) -> None:
    # GIVEN a clone whose answer was a 502 (a proxy's: the clone may have been made; here it was not)
    later: list[str] = []

    def someone_else_makes_one_later() -> None:  # three minutes after the attempt, by Datadog's clock
        created = datetime.now(UTC) + timedelta(minutes=3)
        stamp = created.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        later.append(emulator.add_dataset(PROJECT_ID, NAME, records=1, created_at=stamp).id)

    # WHEN the message comes back
    refused = Fault(status=502, path_contains="/clone")
    new_id = retried_after(aws, emulator, poller, refused, someone_else_makes_one_later)

    # THEN a dataset made outside the attempt's window is not taken for the attempt's
    assert new_id != later[0]


# --- keys that keep their identity across transports ------------------------------------------------------


def test_an_async_failure_record_redriven_keeps_the_original_invocation_s_key(
    aws: Aws, emulator: DatadogEmulator, function_env: None, poller: Poller
) -> None:
    # GIVEN a bare action invoked asynchronously, whose clone was made but whose answer was lost, and whose
    # later tries found Datadog down before they could look for it
    emulator.inject(Fault(status=502, after_work=True, path_contains="/clone"))
    emulator.inject(Fault(status=503, method="GET", path_contains="/datasets", times=2))
    action = clone_action(name=NAME)
    request_id = str(uuid.uuid4())
    for _ in range(3):
        with pytest.raises(RetryLaterError):
            handler.lambda_handler(action, LambdaContext(aws_request_id=request_id))
    # ...so Lambda's OnFailure destination (the DLQ) got the invocation record, and an operator redrives it
    record = {
        "version": "1.0",
        "timestamp": "2026-12-01T03:10:00.000Z",
        "requestContext": {"requestId": request_id, "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": action,
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "responsePayload": {"errorType": "RetryLaterError", "errorMessage": "ambiguous"},
    }
    aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=json.dumps(record))

    # WHEN it comes back through the queue, under a new SQS message id
    assert poller.run_until_empty(timeout_seconds=20)

    # THEN it is settled under the original invocation's key: the dataset made is adopted, not made again
    assert len(emulator.datasets_named(NAME)) == 1
    [event] = aws.result_events()[-1:]
    assert event["detail"]["idempotency_key"] == request_id
    assert event["detail"]["result"]["adopted"] is True


def test_a_redriven_copy_keeps_the_original_time_for_names_and_ages(
    aws: Aws, emulator: DatadogEmulator, poller: Poller, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a nightly snapshot named by its date, dead-lettered days ago with the time SQS first got it
    body = json.dumps(clone_action(name="golden-{date}"))
    aws.sqs.send_message(
        QueueUrl=aws.dlq_url,
        MessageBody=body,
        MessageAttributes={
            name: {"DataType": "String", "StringValue": value}
            for name, value in {
                "error_class": "transient",
                "error_message": "Datadog answered 503",
                "original_sent_at": "2026-11-20T03:00:00.000+00:00",
            }.items()
        },
    )

    # WHEN an operator redrives it, filtered, one by one
    redrive = ["dlq", "redrive", "--dlq-url", aws.dlq_url, "--queue-url", aws.queue_url, "--yes"]
    assert main([*redrive, "--error-class", "transient"]) == 0, capsys.readouterr()
    assert poller.run_until_empty(timeout_seconds=20)

    # THEN it is the snapshot of that night, not of the day it was redriven
    assert len(emulator.datasets_named("golden-2026-11-20")) == 1


def test_a_dead_lettered_message_carries_when_sqs_first_got_it(aws: Aws, poller: Poller) -> None:
    before = datetime.now(UTC)
    aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody="{not json")
    assert poller.run_until_empty(timeout_seconds=20)
    [letter] = aws.dead_letters()
    original = datetime.fromisoformat(letter["attributes"]["original_sent_at"])
    assert before - timedelta(seconds=5) <= original <= datetime.now(UTC)
