"""SQS adapter: send a message to the dead-letter queue within SQS's rules, delay a message's next delivery,
and read what a queue's attributes say about its messages (redrive, retention, size limit)."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from llmobs_actions.aws_clients import AwsClients, Bounds, Deadline, OutOfTimeError

# What SQS accepts in a body or a String attribute value ("Amazon SQS message quotas", Message content):
# #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF. One other character fails the send.
_SQS_ILLEGAL_CHARACTER = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# SQS's own default for a queue's MaximumMessageSize, used when the DLQ's cannot be read.
DEFAULT_MAXIMUM_MESSAGE_SIZE = 262_144
ATTRIBUTE_TYPE = "String"
# Reasons are shortened in this order, down to this many bytes each, before anything else gives way.
_SHORTENED_FIRST = ("datadog_error", "error_message")
_SHORTEST_REASON_BYTES = 64
_SHORTENED_MARK = " [shortened to fit SQS's message size]"
# When shortening is not enough, attributes give way from the end of this list (unlisted ones first);
# error_class, the reason itself, never does.
_KEPT_LONGEST = (
    "error_class",
    "error_message",
    "source_message_id",
    "original_sent_at",
    "retries_exhausted",
    "http_status",
    "datadog_error",
    "receive_count",
    "failed_at",
    "source_queue_arn",
)


# SQS calls' usual bounds; each is cut to what the invocation has left (aws_clients.Bounds.within).
SQS_BOUNDS = Bounds(connect_timeout=3, read_timeout=10, max_attempts=3)
# How long what a queue's attributes say is trusted: a stack update (a higher MaxReceiveCount, say) reaches
# warm sandboxes within this.
FACTS_MAX_AGE_SECONDS = 300


@dataclass(frozen=True)
class QueueFacts:
    """What a source queue's attributes say about the lives of its messages."""

    max_receive_count: int | None = None  # from its RedrivePolicy; None: no redrive policy
    retention_seconds: int | None = None  # MessageRetentionPeriod
    visibility_timeout_seconds: int | None = None  # when a failed message comes back unless told otherwise


class Queues:
    def __init__(
        self, dead_letter_queue_url: str, clients: AwsClients | None = None, actions_queue_url: str | None = None
    ) -> None:
        self._dead_letter_queue_url = dead_letter_queue_url
        self.actions_queue_url = actions_queue_url  # where a direct invocation's long work continues
        self._clients = clients or AwsClients()
        self._queue_urls: dict[str, str] = {}
        self._facts: dict[str, tuple[float, QueueFacts]] = {}
        self._dead_letter_limit: int | None = None

    def dead_letter(self, body: str, attributes: dict[str, str], deadline: Deadline) -> str:
        """Send `body` unchanged with `attributes` made SQS-legal and shortened until the two fit."""
        legal = {name: sqs_legal(value) for name, value in attributes.items() if value}
        fitted = fit_attributes(body, legal, self.dead_letter_limit(deadline))
        response = self._client(deadline).send_message(
            QueueUrl=self._dead_letter_queue_url,
            MessageBody=body,
            MessageAttributes={name: {"DataType": ATTRIBUTE_TYPE, "StringValue": v} for name, v in fitted.items()},
        )
        return str(response["MessageId"])

    def send(self, queue_url: str, body: str, attributes: dict[str, str], deadline: Deadline) -> str:
        """A message of ours (a continuation) to `queue_url`, its attributes SQS-legal."""
        response = self._client(deadline).send_message(
            QueueUrl=queue_url,
            MessageBody=body,
            MessageAttributes={
                name: {"DataType": ATTRIBUTE_TYPE, "StringValue": sqs_legal(value)}
                for name, value in attributes.items()
                if value
            },
        )
        return str(response["MessageId"])

    def delay(self, source_queue_arn: str, receipt_handle: str, seconds: int, deadline: Deadline) -> None:
        self._client(deadline).change_message_visibility(
            QueueUrl=self.queue_url(source_queue_arn, deadline), ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )

    def facts(self, queue_arn: str, deadline: Deadline) -> QueueFacts:
        """The queue's redrive, retention and visibility timeout, read at most every FACTS_MAX_AGE_SECONDS."""
        cached = self._facts.get(queue_arn)
        if cached is not None and time.monotonic() - cached[0] < FACTS_MAX_AGE_SECONDS:
            return cached[1]
        names = ["RedrivePolicy", "MessageRetentionPeriod", "VisibilityTimeout"]
        attributes = (
            self._client(deadline)
            .get_queue_attributes(QueueUrl=self.queue_url(queue_arn, deadline), AttributeNames=names)
            .get("Attributes", {})
        )
        facts = QueueFacts(
            _max_receive_count(attributes.get("RedrivePolicy")),
            _int(attributes.get("MessageRetentionPeriod")),
            _int(attributes.get("VisibilityTimeout")),
        )
        self._facts[queue_arn] = (time.monotonic(), facts)
        return facts

    def dead_letter_limit(self, deadline: Deadline) -> int:
        """The DLQ's MaximumMessageSize (body plus attributes), read once."""
        if self._dead_letter_limit is None:
            try:
                attributes = (
                    self._client(deadline)
                    .get_queue_attributes(QueueUrl=self._dead_letter_queue_url, AttributeNames=["MaximumMessageSize"])
                    .get("Attributes", {})
                )
                self._dead_letter_limit = _int(attributes.get("MaximumMessageSize")) or DEFAULT_MAXIMUM_MESSAGE_SIZE
            except Exception:  # not allowed to read it, say: SQS's default is the safe assumption
                return DEFAULT_MAXIMUM_MESSAGE_SIZE
        return self._dead_letter_limit

    def queue_url(self, queue_arn: str, deadline: Deadline) -> str:
        """Resolve arn:aws:sqs:<region>:<account>:<name> to its URL (works on AWS and moto alike)."""
        cached = self._queue_urls.get(queue_arn)
        if cached is not None:
            return cached
        parts = queue_arn.split(":")
        if len(parts) != 6 or parts[2] != "sqs":
            raise ValueError(f"not an SQS queue ARN: {queue_arn!r}")
        answer = self._client(deadline).get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])
        url = str(answer["QueueUrl"])
        self._queue_urls[queue_arn] = url
        return url

    def _client(self, deadline: Deadline) -> Any:
        client = self._clients.within("sqs", SQS_BOUNDS, deadline.seconds_left())
        if client is None:
            raise OutOfTimeError("too little time left for an SQS call")
        return client


def sqs_legal(text: str) -> str:
    """`text` with every character SQS refuses written as \\uXXXX: escaped, never dropped."""
    return _SQS_ILLEGAL_CHARACTER.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


def message_size(body: str, attributes: dict[str, str]) -> int:
    """What SQS counts against MaximumMessageSize: the body plus each attribute's name, type and value."""
    return _bytes(body) + sum(
        _bytes(name) + _bytes(ATTRIBUTE_TYPE) + _bytes(value) for name, value in attributes.items()
    )


def fit_attributes(body: str, attributes: dict[str, str], limit: int) -> dict[str, str]:
    """The attributes, with the reasons shortened (never the body) until body plus attributes fit `limit`.

    datadog_error gives way first, then error_message, each down to a readable stub. When that is not
    enough, the least useful attributes are dropped, and error_message is cut to the room left.
    error_class stays: if even it does not fit, the send fails and SQS's redrive keeps the message.
    """
    fitted = dict(attributes)
    for name in _SHORTENED_FIRST:
        overflow = message_size(body, fitted) - limit
        if overflow <= 0:
            return fitted
        if name in fitted:
            fitted[name] = _shorten(fitted[name], max(_SHORTEST_REASON_BYTES, _bytes(fitted[name]) - overflow))
    rank = {name: position for position, name in enumerate(_KEPT_LONGEST)}
    for name in sorted(fitted, key=lambda n: rank.get(n, len(rank)), reverse=True):
        overflow = message_size(body, fitted) - limit
        if overflow <= 0 or name == "error_class":
            return fitted
        if name == "error_message" and _bytes(fitted[name]) > overflow:
            shortened = _shorten(fitted[name], _bytes(fitted[name]) - overflow)
            if shortened:  # SQS refuses an empty value
                fitted[name] = shortened
                continue
        del fitted[name]
    return fitted


def _shorten(text: str, max_bytes: int) -> str:
    """At most `max_bytes` of UTF-8, cut on a character boundary, marked as shortened when there is room."""
    if _bytes(text) <= max_bytes:
        return text
    mark = _SHORTENED_MARK if max_bytes >= 2 * _bytes(_SHORTENED_MARK) else ""
    cut = text.encode("utf-8", "surrogatepass")[: max_bytes - _bytes(mark)]
    return cut.decode("utf-8", "ignore") + mark


def _bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _max_receive_count(policy: object) -> int | None:
    try:
        document = json.loads(policy) if isinstance(policy, str) else None
    except ValueError:
        return None
    return _int(document.get("maxReceiveCount")) if isinstance(document, dict) else None


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None
