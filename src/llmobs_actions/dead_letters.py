"""The dead-letter queue, for operators: read every message (and show it again after), tell who dead-lettered
it and why, count them, and move chosen ones back to their queue one by one, never losing one."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from llmobs_actions.messages import ORIGINAL_SENT_AT, SOURCE_MESSAGE_ID, is_failure_record

REDRIVEN = "moved by SQS after maxReceiveCount (reasons: the function's log lines, by message_id)"
# While being read, a message stays hidden this long, so that each receive brings new ones.
HOLD_SECONDS = 300
# Long polls that come back empty, in a row, before the rest is taken to be in flight elsewhere.
EMPTY_POLLS_TO_STOP = 2


@dataclass(frozen=True)
class DeadLetter:
    message_id: str  # in the DLQ
    receipt_handle: str
    body: str
    attributes: dict[str, str]  # its message attributes, as strings
    sent_at: datetime | None  # when it entered the DLQ
    origin: str  # function, lambda, eventbridge, scheduler, sqs
    error_class: str
    reason: str

    @property
    def source_message_id(self) -> str:
        return self.attributes.get("source_message_id", self.message_id)

    @property
    def original_sent_at(self) -> str | None:
        """When SQS first got the message this is a copy of: the function said so, or SQS moved it unchanged."""
        if ORIGINAL_SENT_AT in self.attributes:
            return self.attributes[ORIGINAL_SENT_AT]
        if self.origin == "sqs" and self.sent_at is not None:  # moved by the redrive policy: its own time
            return self.sent_at.isoformat(timespec="milliseconds")
        return None

    @property
    def failed_at(self) -> datetime | None:
        stamp = self.attributes.get("failed_at")
        try:
            return datetime.fromisoformat(stamp) if stamp else self.sent_at
        except ValueError:
            return self.sent_at

    def as_json(self) -> dict[str, Any]:
        failed = self.failed_at
        return {
            "message_id": self.message_id,
            "source_message_id": self.source_message_id,
            "origin": self.origin,
            "error_class": self.error_class,
            "http_status": self.attributes.get("http_status"),
            "reason": self.reason,
            "failed_at": failed.isoformat(timespec="seconds") if failed else None,
            "attributes": self.attributes,
            "body": self.body,
        }


@dataclass
class Selection:
    """Which dead letters a redrive takes back."""

    error_classes: frozenset[str] = frozenset()  # empty: every class
    older_than_seconds: float | None = None
    include_invalid: bool = False
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def takes(self, letter: DeadLetter) -> bool:
        if letter.error_class == "invalid" and not self.include_invalid:
            return False  # it would only fail again
        if self.error_classes and letter.error_class not in self.error_classes:
            return False
        if self.older_than_seconds is not None:
            failed = letter.failed_at
            if failed is None or (self.now - failed).total_seconds() < self.older_than_seconds:
                return False
        return True

    @property
    def filters(self) -> bool:
        return bool(self.error_classes) or self.older_than_seconds is not None


def describe(message: dict[str, Any]) -> DeadLetter:
    """Who dead-lettered a received message and why: its attributes, or, for a Lambda OnFailure record, its body."""
    attributes = {k: str(v.get("StringValue", "")) for k, v in message.get("MessageAttributes", {}).items()}
    body = str(message.get("Body", ""))
    sent = message.get("Attributes", {}).get("SentTimestamp")
    origin, error_class, reason = _origin(body, attributes)
    return DeadLetter(
        message_id=str(message["MessageId"]),
        receipt_handle=str(message["ReceiptHandle"]),
        body=body,
        attributes=attributes,
        sent_at=datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None,
        origin=origin,
        error_class=error_class,
        reason=reason,
    )


def _origin(body: str, attributes: dict[str, str]) -> tuple[str, str, str]:
    if "error_class" in attributes:
        exhausted = attributes.get("retries_exhausted")
        why = attributes.get("error_message", "") + (f" ({exhausted})" if exhausted else "")
        return "function", attributes["error_class"], why
    if "ERROR_CODE" in attributes:  # EventBridge or Scheduler could not deliver to the queue
        origin = "scheduler" if "SCHEDULE_ARN" in attributes else "eventbridge"
        source = attributes.get("SCHEDULE_ARN") or attributes.get("RULE_ARN", "")
        return origin, attributes["ERROR_CODE"], f"{attributes.get('ERROR_MESSAGE', '')} ({source})"
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if is_failure_record(document):  # an asynchronous invocation that failed for good
        condition = str(document["requestContext"].get("condition", "unknown"))
        error = document.get("responsePayload")
        error = error if isinstance(error, dict) else {}
        return "lambda", condition, f"{error.get('errorType', '')}: {error.get('errorMessage', '')}"
    return "sqs", "redriven", REDRIVEN


def read_all(sqs: Any, queue_url: str, limit: int, wait_seconds: int = 5) -> list[DeadLetter]:
    """Every message of the queue, up to `limit`, hidden while read; `release` shows them again.

    It reads until it has seen ApproximateNumberOfMessages (a short poll may answer nothing while messages
    are there), with long polls, and stops early only when long polls in a row come back empty.
    """
    expected = int(
        sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
    )
    seen: dict[str, DeadLetter] = {}
    empty_polls = 0
    while len(seen) < min(expected, limit) and empty_polls < EMPTY_POLLS_TO_STOP:
        received = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, limit - len(seen)),
            MessageAttributeNames=["All"],
            AttributeNames=["SentTimestamp"],
            VisibilityTimeout=HOLD_SECONDS,
            WaitTimeSeconds=wait_seconds,
        ).get("Messages", [])
        empty_polls = 0 if received else empty_polls + 1
        for message in received:
            seen[message["MessageId"]] = describe(message)
    return list(seen.values())


def release(sqs: Any, queue_url: str, letters: Iterable[DeadLetter]) -> None:
    """Make messages that were read visible again at once."""
    handles = [letter.receipt_handle for letter in letters]
    for start in range(0, len(handles), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for n, handle in enumerate(handles[start : start + 10])
            ],
        )


def counts(letters: Iterable[DeadLetter]) -> dict[str, dict[str, int]]:
    letters = list(letters)
    return {
        "by_error_class": dict(Counter(letter.error_class for letter in letters).most_common()),
        "by_origin": dict(Counter(letter.origin for letter in letters).most_common()),
    }


def redrive_selected(
    sqs: Any,
    dlq_url: str,
    destination_url: str,
    selection: Selection,
    expected: int,
    max_per_second: float | None = None,
    progress: Callable[[int], None] = lambda moved: None,
) -> int:
    """Move the messages `selection` takes back to `destination_url`, one by one: each is sent first and
    deleted from the DLQ only once the send succeeded, so that a failure leaves it where it was.

    The others stay hidden until the end (so that receives move on past them), then are shown again.
    Returns how many were moved.
    """
    moved, kept = 0, []
    empty_polls = 0
    pause = 1 / max_per_second if max_per_second else 0.0
    try:
        while moved < expected and empty_polls < EMPTY_POLLS_TO_STOP:
            received = sqs.receive_message(
                QueueUrl=dlq_url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                AttributeNames=["SentTimestamp"],
                VisibilityTimeout=HOLD_SECONDS,
                WaitTimeSeconds=2,
            ).get("Messages", [])
            empty_polls = 0 if received else empty_polls + 1
            for message in received:
                letter = describe(message)
                if not selection.takes(letter) or moved >= expected:
                    kept.append(letter)
                    continue
                started = time.monotonic()
                # the body unchanged, with what makes the copy the same request: the first message's id (the
                # key of a message without one of its own) and time (its {date}, its age), as a move task keeps
                identity = {SOURCE_MESSAGE_ID: letter.source_message_id, ORIGINAL_SENT_AT: letter.original_sent_at}
                sqs.send_message(
                    QueueUrl=destination_url,
                    MessageBody=letter.body,
                    MessageAttributes={
                        name: {"DataType": "String", "StringValue": value} for name, value in identity.items() if value
                    },
                )
                sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=letter.receipt_handle)
                moved += 1
                progress(moved)
                time.sleep(max(0.0, pause - (time.monotonic() - started)))
    finally:
        release(sqs, dlq_url, kept)
    return moved
