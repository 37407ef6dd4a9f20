"""The failure policy: what each failure is, whether it is dead-lettered or retried, and what the DLQ is told."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum, StrEnum

from llmobs_actions.aws_clients import OutOfTimeError
from llmobs_actions.contract import InvalidAction
from llmobs_actions.datadog import DatadogHTTPError, DatadogNoAnswerError, DatadogUnreachableError
from llmobs_actions.keys import SecretMisconfiguredError, SecretUnavailableError
from llmobs_actions.messages import ORIGINAL_SENT_AT, SOURCE_MESSAGE_ID, InboundMessage


class ErrorClass(StrEnum):
    INVALID = "invalid"
    REJECTED = "rejected"
    AUTH = "auth"
    THROTTLED = "throttled"
    TRANSIENT = "transient"
    AMBIGUOUS = "ambiguous"
    CONFIGURATION = "configuration"
    IN_PROGRESS = "in_progress"
    OUT_OF_TIME = "out_of_time"
    INTERNAL = "internal"


class Disposition(Enum):
    DEAD_LETTER = "dead_letter"  # can never succeed: to the DLQ now, with the reason
    RETRY = "retry"  # may succeed later: back to the queue (batch item failure)


# DESIGN.md section 4, as code. Anything not "dead letter" is retried; on its last receive (the queue's
# maxReceiveCount) the function dead-letters it itself, with its reason (settlement.py). SQS's own redrive
# moves it only when that last invocation did not survive to say why.
POLICY: dict[ErrorClass, Disposition] = {
    ErrorClass.INVALID: Disposition.DEAD_LETTER,  # not JSON, fails the contract, unsafe id
    ErrorClass.REJECTED: Disposition.DEAD_LETTER,  # Datadog 400/404/409/413/422 (other 4xx); key reused elsewhere
    ErrorClass.AUTH: Disposition.RETRY,  # 401/403 even after refetching the secret once
    ErrorClass.THROTTLED: Disposition.RETRY,  # 429: invisible until X-RateLimit-Reset
    ErrorClass.TRANSIENT: Disposition.RETRY,  # 5xx, 408, connect failures, Secrets Manager down
    ErrorClass.AMBIGUOUS: Disposition.RETRY,  # sent, no answer: the retry looks before cloning again
    ErrorClass.CONFIGURATION: Disposition.RETRY,  # secret missing or malformed: retry once fixed
    ErrorClass.IN_PROGRESS: Disposition.RETRY,  # the same key is being performed elsewhere right now
    ErrorClass.OUT_OF_TIME: Disposition.RETRY,  # too little Lambda time left to start a call
    ErrorClass.INTERNAL: Disposition.RETRY,  # a bug of ours: never lose the message over it
}

REJECTED_STATUSES = frozenset({400, 404, 409, 413, 422})
_LEAST_JITTER = 0.8  # a retry delay is drawn between 80 % and 100 % of its nominal value
AUTH_STATUSES = frozenset({401, 403})
_MAX_MESSAGE_CHARS = 1000


class IdempotencyConflictError(Exception):
    """The idempotency key was already used for a different request."""


class IdempotencyBusyError(Exception):
    """The same idempotency key is being performed elsewhere right now, by an attempt that may hold it that long."""

    def __init__(self, message: str, held_for_seconds: float | None = None) -> None:
        super().__init__(message)
        self.held_for_seconds = held_for_seconds


class IdempotencyStoreError(Exception):
    """The idempotency records cannot be read or written, before the action ran (or after it failed)."""


class PruneRefusedError(Exception):
    """A prune selector matches more experiments than the message allows to delete."""


class NameResolutionError(Exception):
    """A project or dataset name matches no live one, or more than one: which one is meant is unknowable."""


class BackupRejectedError(Exception):
    """A backup or import that cannot succeed as asked: an export whose digest or count does not match its
    manifest, a source that is no export, work that needs more invocations than a chain of them may have."""


class BackupUnavailableError(Exception):
    """The backup bucket could not be read or written (S3 unavailable, throttling): the work resumes later."""


class BackupNotConfiguredError(Exception):
    """No backup bucket is configured, or the role may not use it."""


class AuthRejectedError(Exception):
    """Datadog refused the keys, also after refetching them."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"Datadog answered {status} with fresh keys too" + (f": {detail}" if detail else ""))
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Failure:
    error_class: ErrorClass
    message: str
    http_status: int | None = None
    datadog_error: str | None = None
    retry_after_seconds: float | None = None

    @property
    def disposition(self) -> Disposition:
        return POLICY[self.error_class]


def classify(error: BaseException) -> Failure:
    """Map any exception raised while handling one message onto a row of the policy."""
    message = str(error)[:_MAX_MESSAGE_CHARS] or type(error).__name__
    match error:
        case InvalidAction():
            return Failure(ErrorClass.INVALID, message)
        case PruneRefusedError() | NameResolutionError() | BackupRejectedError():
            return Failure(ErrorClass.REJECTED, message)
        case BackupUnavailableError():
            return Failure(ErrorClass.TRANSIENT, message)
        case BackupNotConfiguredError():
            return Failure(ErrorClass.CONFIGURATION, message)
        case IdempotencyConflictError():
            return Failure(ErrorClass.REJECTED, message)
        case IdempotencyBusyError():
            return Failure(ErrorClass.IN_PROGRESS, message, retry_after_seconds=error.held_for_seconds)
        case AuthRejectedError():
            return Failure(ErrorClass.AUTH, message, error.status, error.detail or None)
        case DatadogHTTPError():
            return _classify_status(error, message)
        case DatadogUnreachableError() | SecretUnavailableError():
            return Failure(ErrorClass.TRANSIENT, message)
        case IdempotencyStoreError():
            # Without its idempotency record the action is not performed: retry when DynamoDB is back.
            return Failure(ErrorClass.TRANSIENT, message)
        case DatadogNoAnswerError():
            return Failure(ErrorClass.AMBIGUOUS, message)
        case SecretMisconfiguredError():
            return Failure(ErrorClass.CONFIGURATION, message)
        case OutOfTimeError():
            return Failure(ErrorClass.OUT_OF_TIME, message)
        case _:
            return Failure(ErrorClass.INTERNAL, f"{type(error).__name__}: {message}")


# The Datadog operations that change something: only a request of one of these can have made or deleted.
CHANGING_OPERATIONS = frozenset(
    {
        "clone_dataset",
        "delete_experiments",
        "delete_datasets",
        "restore_dataset_version",
        "create_dataset",
        "upload_records",
    }
)


def may_have_taken_effect(error: BaseException) -> bool:
    """Whether the attempt that failed with `error` may have changed something in Datadog.

    No, when the failure came before any changing request left (a read, the keys, the idempotency store, an
    unreachable Datadog, a budget used up) or when Datadog refused it before handling it: a 4xx, a 503
    ("currently unable to handle the request", RFC 9110) or a 501. A 500, 502 or 504, a timeout, or no answer
    at all may come after the work was done: yes. So does anything not understood.
    """
    match error:
        case DatadogHTTPError():
            handled = error.status == 408 or (error.status >= 500 and error.status not in (501, 503))
            return error.operation in CHANGING_OPERATIONS and handled
        case DatadogNoAnswerError():
            return error.operation in CHANGING_OPERATIONS
        case (
            DatadogUnreachableError()
            | OutOfTimeError()
            | InvalidAction()
            | PruneRefusedError()
            | NameResolutionError()
            | AuthRejectedError()
            | SecretUnavailableError()
            | SecretMisconfiguredError()
            | IdempotencyStoreError()
            | BackupNotConfiguredError()
        ):
            return False
        case _:
            return True


def _classify_status(error: DatadogHTTPError, message: str) -> Failure:
    status, detail = error.status, error.detail or None
    if status == 429:
        return Failure(ErrorClass.THROTTLED, message, status, detail, error.rate_limit.reset_seconds)
    if status in AUTH_STATUSES:
        return Failure(ErrorClass.AUTH, message, status, detail)
    if status == 408 or status >= 500 or status < 400:
        return Failure(ErrorClass.TRANSIENT, message, status, detail)
    # 400/404/409/413/422 and any other 4xx: the same request will be refused again.
    return Failure(ErrorClass.REJECTED, message, status, detail)


@dataclass(frozen=True)
class Backoff:
    """How long a message that may succeed later stays invisible before its next try.

    Exponential in the receive count (base x factor^(receives-1), at most `max_seconds`), jittered
    down by up to a fifth so that a failed batch does not come back as one burst. A 429 waits for its
    X-RateLimit-Reset instead. The defaults (30 s, x6, 1 h) spread the default five receives over more
    than an hour: a message outlives an hour-long Datadog outage instead of being dead-lettered by it.
    """

    base_seconds: int = 30
    factor: float = 6.0
    max_seconds: int = 3600

    def delay(self, failure: Failure, receive_count: int) -> int | None:
        """Seconds until the next try (None: leave it to the queue's visibility timeout)."""
        if failure.error_class is ErrorClass.THROTTLED:
            reset = failure.retry_after_seconds
            wait = reset if reset is not None else self.base_seconds
            # Back just after the window resets (SQS counts whole seconds); the jitter keeps a throttled
            # batch from arriving as one burst, while the client's rate budget stops any overshoot.
            return max(1, min(self.max_seconds, math.ceil(wait + random.uniform(0, 0.5))))  # noqa: S311 (jitter)
        if failure.error_class is ErrorClass.OUT_OF_TIME or self.base_seconds == 0:
            return None  # untouched: the queue's own visibility timeout brings it back
        delay = int(self.nominal(receive_count) * random.uniform(_LEAST_JITTER, 1.0))  # noqa: S311 (jitter)
        if failure.error_class is ErrorClass.IN_PROGRESS and failure.retry_after_seconds is not None:
            # Never later than when the attempt holding the key must have ended (its invocation's deadline).
            delay = max(1, min(delay, math.ceil(failure.retry_after_seconds + 1)))
        return delay

    def nominal(self, receive_count: int) -> float:
        steps = min(max(receive_count - 1, 0), 60)
        return float(min(self.max_seconds, self.base_seconds * self.factor**steps))

    def survives_seconds(self, max_receive_count: int) -> float:
        """The longest outage a message outlives for sure: its shortest possible wait before the last receive."""
        return sum(self.nominal(n) * _LEAST_JITTER for n in range(1, max_receive_count))


def dead_letter_attributes(
    failure: Failure, message: InboundMessage, retries_exhausted: str | None = None, now: datetime | None = None
) -> dict[str, str]:
    """The reason a message was dead-lettered, as SQS message attributes (never more than 10)."""
    attributes = {
        "error_class": failure.error_class.value,
        "error_message": failure.message,
        SOURCE_MESSAGE_ID: message.first_message_id or "unknown",  # a redrive's copy keeps the request's key
        "receive_count": str(message.receive_count),
        "failed_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
    }
    if retries_exhausted:
        attributes["retries_exhausted"] = retries_exhausted
    if failure.http_status is not None:
        attributes["http_status"] = str(failure.http_status)
    if failure.datadog_error:
        attributes["datadog_error"] = failure.datadog_error
    if message.source_arn:
        attributes["source_queue_arn"] = message.source_arn
    original = message.original_sent_ms or message.sent_ms
    if original:  # a redrive sends it back with this: its {date} and its age stay the original's
        attributes[ORIGINAL_SENT_AT] = datetime.fromtimestamp(original / 1000, UTC).isoformat(timespec="milliseconds")
    return attributes
