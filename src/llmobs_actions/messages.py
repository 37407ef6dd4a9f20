"""Inbound messages: what an SQS record or a direct invocation carries, and the action payload inside it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from llmobs_actions.contract import InvalidAction

# The message attribute that carries, on a copy of a message (dead-lettered, then redriven), when SQS first got
# the original: name templates and age cut-offs read the request's time, not the copy's.
ORIGINAL_SENT_AT = "original_sent_at"
# ...and the id of the message the request first came in: a key of its own, the copy's key too.
SOURCE_MESSAGE_ID = "source_message_id"
# ...and, on a continuation of long work, how many invocations the chain has had before this one.
CONTINUATION = "continuation"


@dataclass(frozen=True)
class InboundMessage:
    message_id: str
    body: str  # exactly as received: a dead-lettered message must be redrivable unchanged
    receive_count: int = 1
    source_arn: str | None = None
    receipt_handle: str | None = None
    first_received_ms: int | None = None
    sent_ms: int | None = None
    original_sent_ms: int | None = None  # a redriven copy's original's SentTimestamp (ORIGINAL_SENT_AT)
    original_message_id: str | None = None  # a redriven copy's original's message id (SOURCE_MESSAGE_ID)
    malformed: str | None = None  # what is wrong with the record itself (SQS never sends such a record)
    continuation: int = 0  # invocations of long work under this request before this one (CONTINUATION)

    @property
    def from_sqs(self) -> bool:
        return self.receipt_handle is not None

    @property
    def first_message_id(self) -> str:
        """The id of the message the request first came in (this one, unless it is a redriven copy)."""
        return self.original_message_id or self.message_id


@dataclass(frozen=True)
class Payload:
    """The action-shaped part of a message, plus what its envelopes said: the EventBridge event's id and
    time, and, for an event that comes back inside a Lambda OnFailure record, that record's condition."""

    action: object
    event_id: str | None = None
    event_time: str | None = None
    detail_type: str | None = None
    failure_condition: str | None = None  # "RetriesExhausted", "EventAgeExceeded", ...
    failure_recorded_at: str | None = None  # the record's timestamp


def is_failure_record(document: object) -> bool:
    """A record Lambda sends to an OnFailure destination after an asynchronous invocation failed for good."""
    return (
        isinstance(document, Mapping)
        and "requestPayload" in document
        and isinstance(document.get("requestContext"), Mapping)
        and "responseContext" in document
    )


def is_sqs_event(event: object) -> bool:
    records = event.get("Records") if isinstance(event, Mapping) else None
    return isinstance(records, list) and all(
        isinstance(record, Mapping) and record.get("eventSource") == "aws:sqs" for record in records
    )


def from_sqs_record(record: Mapping[str, Any]) -> InboundMessage:
    """The message an SQS record carries. A hand-made event may hold records no SQS would send: one without
    a messageId gets an id of its own (never shared with another record, so never another's idempotency
    key), and a body that is no string or is empty is kept as its JSON text (SQS refuses empty bodies)."""
    attributes = record.get("attributes")
    if not isinstance(attributes, Mapping):
        attributes = {}
    message_id, body, source_arn = record.get("messageId"), record.get("body"), record.get("eventSourceARN")
    problems = []
    if not isinstance(message_id, str) or not message_id:
        problems.append("the record has no messageId")
        message_id = f"no-message-id-{uuid.uuid4()}"
    if not isinstance(body, str) or not body:
        problems.append("the record's body is " + ("empty" if body == "" else f"not a string ({type(body).__name__})"))
        body = json.dumps(body, default=str)
    return InboundMessage(
        message_id=message_id,
        body=body,
        malformed="; ".join(problems) or None,
        receive_count=_int(attributes.get("ApproximateReceiveCount")) or 1,
        source_arn=source_arn if isinstance(source_arn, str) else None,
        receipt_handle=str(record.get("receiptHandle", "")),
        first_received_ms=_int(attributes.get("ApproximateFirstReceiveTimestamp")),
        sent_ms=_int(attributes.get("SentTimestamp")),
        original_sent_ms=_moment_ms(_attribute(record, ORIGINAL_SENT_AT)),
        original_message_id=_attribute(record, SOURCE_MESSAGE_ID),
        continuation=_int(_attribute(record, CONTINUATION)) or 0,
    )


def _attribute(record: Mapping[str, Any], name: str) -> str | None:
    attributes = record.get("messageAttributes")
    attribute = attributes.get(name) if isinstance(attributes, Mapping) else None
    value = attribute.get("stringValue") if isinstance(attribute, Mapping) else None
    return value if isinstance(value, str) and value else None


def _moment_ms(value: str | None) -> int | None:
    moment = parse_timestamp(value)
    return int(moment.timestamp() * 1000) if moment else None


def from_direct_event(event: object, request_id: str) -> InboundMessage:
    event_id = event.get("id") if isinstance(event, Mapping) else None
    return InboundMessage(
        message_id=event_id if isinstance(event_id, str) and event_id else request_id,
        body=json.dumps(event, separators=(",", ":"), default=str),
    )


def unwrap(body: str) -> Payload:
    """Parse a body that is either an action or an EventBridge event whose `detail` is the action."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise InvalidAction(f"body is not JSON: {str(error)[:200]}") from None
    return unwrap_document(document)


def unwrap_document(document: object) -> Payload:
    """The action in an action, an EventBridge event, or a Lambda OnFailure record of either."""
    if is_failure_record(document):
        assert isinstance(document, Mapping)
        # The original event, processed exactly as it would have been: same action, same idempotency key. An
        # event without an id (a bare action, invoked asynchronously) was keyed by its invocation's request id,
        # which Lambda keeps for every retry of the event and names in the record.
        inner = unwrap_document(document["requestPayload"])
        context, recorded_at = document["requestContext"], document.get("timestamp")
        condition, request_id = context.get("condition"), context.get("requestId")
        return Payload(
            action=inner.action,
            event_id=inner.event_id or (request_id if isinstance(request_id, str) and request_id else None),
            event_time=inner.event_time,
            detail_type=inner.detail_type,
            failure_condition=condition if isinstance(condition, str) else "unknown",
            failure_recorded_at=recorded_at if isinstance(recorded_at, str) else None,
        )
    if isinstance(document, Mapping) and "detail" in document and "detail-type" in document:
        event_id, event_time, detail_type = document.get("id"), document.get("time"), document.get("detail-type")
        return Payload(
            action=document["detail"],
            event_id=event_id if isinstance(event_id, str) and event_id else None,
            event_time=event_time if isinstance(event_time, str) else None,
            detail_type=detail_type if isinstance(detail_type, str) else None,
        )
    return Payload(action=document)


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def parse_timestamp(value: str | None) -> datetime | None:
    """An ISO-8601 time as AWS and Datadog write it ('...Z' included); naive times are taken as UTC."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
