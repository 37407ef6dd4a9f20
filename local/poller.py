"""The poller: what Lambda's SQS event source mapping does, against moto.

Receive up to BatchSize messages (with their attributes, so ApproximateReceiveCount is real), build the
SQS event Lambda builds, invoke the function, delete every message not listed in batchItemFailures and
leave the rest to come back when their visibility runs out. moto's redrive policy then moves a message
that failed maxReceiveCount times to the DLQ. moto's own SQS-to-Lambda trigger is never used: without
Docker it drops or fakes invocations.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local.lambda_context import LambdaContext
from local.stack import REGION

Invoke = Callable[[dict[str, Any]], Any]


@dataclass
class Delivery:
    """Everything the poller saw of one message."""

    message_id: str
    body: str
    receives: int = 0
    received_at: list[float] = field(default_factory=list)  # time.monotonic() of each receive
    deleted: bool = False
    responses: list[str] = field(default_factory=list)  # per invocation: "done", "retry" or "error: ..."


@dataclass
class Poller:
    sqs: Any
    queue_url: str
    queue_arn: str
    invoke: Invoke
    batch_size: int = 10
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    invocations: int = 0

    def poll_once(self, wait_seconds: int = 0) -> int:
        """One event-source-mapping cycle; returns how many messages it handed to the function."""
        messages = self._receive(wait_seconds)
        if not messages:
            return 0
        for message in messages:
            delivery = self.deliveries.setdefault(message["MessageId"], Delivery(message["MessageId"], message["Body"]))
            delivery.receives += 1
            delivery.received_at.append(time.monotonic())
        event = {"Records": [sqs_record(message, self.queue_arn) for message in messages]}
        self.invocations += 1
        try:
            response = self.invoke(event)
        except Exception as error:  # a function error: Lambda deletes nothing, the whole batch comes back
            for message in messages:
                self.deliveries[message["MessageId"]].responses.append(f"error: {error}")
            return len(messages)
        failed = _failed_ids(response, messages)
        done = [m for m in messages if m["MessageId"] not in failed]
        for message in messages:
            self.deliveries[message["MessageId"]].responses.append(
                "retry" if message["MessageId"] in failed else "done"
            )
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)],
            )
            for message in chunk:
                self.deliveries[message["MessageId"]].deleted = True
        return len(messages)

    def run_until_empty(self, timeout_seconds: float = 60) -> bool:
        """Poll until no message is visible or in flight; False if that did not happen in time."""
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self.poll_once(wait_seconds=1) == 0 and self.queue_is_empty():
                return True
        return False

    def queue_is_empty(self) -> bool:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            attributes["ApproximateNumberOfMessages"] == "0"
            and attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
        )

    def _receive(self, wait_seconds: int) -> list[dict[str, Any]]:
        """Up to batch_size messages; SQS hands out at most ten per call, so gather like the mapping does."""
        messages: list[dict[str, Any]] = []
        while len(messages) < self.batch_size:
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.batch_size - len(messages)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=wait_seconds if not messages else 0,
            )
            received = response.get("Messages", [])
            if not received:
                break
            messages += received
        return messages


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """The record Lambda's event source mapping builds from a received SQS message."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def in_process(handler: Callable[[dict[str, Any], Any], Any], timeout_seconds: int) -> Invoke:
    """Call the handler in this process with a context whose remaining time counts down from the timeout."""

    def invoke(event: dict[str, Any]) -> Any:
        return handler(event, LambdaContext(remaining_ms=timeout_seconds * 1000))

    return invoke


def _failed_ids(response: Any, messages: list[dict[str, Any]]) -> set[str]:
    """Lambda's rules: a malformed response or an unknown/empty identifier fails the whole batch."""
    all_ids = {m["MessageId"] for m in messages}
    if response is None:
        return set()
    failures = response.get("batchItemFailures") if isinstance(response, dict) else None
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return all_ids
    ids = {f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures}
    return all_ids if not ids <= all_ids else {i for i in ids if isinstance(i, str)}
