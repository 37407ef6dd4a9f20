"""Outcomes: what happened to each message, and the metrics and log lines that report it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from llmobs_actions.failures import ErrorClass, Failure
from llmobs_actions.observability import count, count_with_dimension, logger


class Status(StrEnum):
    DONE = "done"
    DEAD_LETTERED = "dead_lettered"
    RETRY = "retry"
    CONTINUED = "continued"  # long work goes on in a continuation message under the same key


@dataclass(frozen=True)
class Outcome:
    message_id: str
    status: Status
    action: str | None = None
    summary: str = ""
    failure: Failure | None = None
    details: dict[str, object] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # what the action reports when done now

    def as_dict(self) -> dict[str, object]:
        described: dict[str, object] = {
            "message_id": self.message_id,
            "status": self.status.value,
            "action": self.action,
            "summary": self.summary,
        }
        if self.failure is not None:
            described["error_class"] = self.failure.error_class.value
            described["error_message"] = self.failure.message
        return described | ({"details": self.details} if self.details else {})


def report(outcomes: list[Outcome]) -> None:
    """Emit the batch's metrics and one summary line (per-message lines were logged as they happened)."""
    count("MessagesReceived", len(outcomes))
    for outcome in outcomes:
        if outcome.status is Status.DONE:
            count("DuplicateSuppressed" if outcome.details.get("duplicate") else "ActionSucceeded")
            done_now = not outcome.details.get("dry_run") and not outcome.details.get("duplicate")
            for name, value in outcome.metrics.items() if done_now else ():  # a duplicate did nothing now
                count(name, value)
            continue
        if outcome.status is Status.CONTINUED:
            count("ActionContinued")
            continue
        if outcome.failure is not None:
            count_with_dimension("ActionFailed", "error_class", outcome.failure.error_class.value)
            if outcome.failure.error_class is ErrorClass.THROTTLED:
                count("Throttled")
        if outcome.status is Status.DEAD_LETTERED:
            count("DeadLettered")
    statuses = Counter(outcome.status.value for outcome in outcomes)
    logger.info("batch finished", extra={"messages": len(outcomes), **statuses})
