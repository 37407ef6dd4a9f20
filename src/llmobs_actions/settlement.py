"""Settlement: how a message ends - done, in the dead-letter queue with its reason, or back in its queue until
its next try. Every ending goes through here, so that each is decided, logged and reported in one place.

Every AWS call here is bounded by the invocation's one deadline, in the order that keeps the guarantees: the
message's fate first (the DLQ send, or its retry delay), telling whoever asked last (result events and task
callbacks). Out of time, a message is left to its retry, never both dead-lettered and redelivered."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext

from llmobs_actions.attempts import ActionResult
from llmobs_actions.aws_clients import Deadline
from llmobs_actions.contract import AnyAction
from llmobs_actions.failures import Backoff, Disposition, Failure, dead_letter_attributes
from llmobs_actions.messages import InboundMessage
from llmobs_actions.observability import logger
from llmobs_actions.outcomes import Outcome, Status
from llmobs_actions.queues import Queues
from llmobs_actions.results import Announcer, Reply, result_detail

# A retry is scheduled to come back at least this long before its queue's retention would delete it.
EXPIRY_MARGIN_SECONDS = 300


class Settlement:
    def __init__(self, queues: Queues, backoff: Backoff, announcer: Announcer | None = None) -> None:
        self._queues = queues
        self._backoff = backoff
        self._announcer = announcer

    def prepare(self, messages: list[InboundMessage], deadline: Deadline) -> None:
        """Read, before any action, what the queues of retried messages say of their last receive: a last
        receive that runs out of time is then still dead-lettered with its reason, not left to SQS's redrive."""
        for arn in {m.source_arn for m in messages if m.from_sqs and m.source_arn and m.receive_count > 1}:
            try:
                self._queues.facts(arn, deadline)
            except Exception:  # read again when needed, as before
                logger.warning("could not read the source queue's redrive policy", exc_info=True)

    def together(self, deadline: Deadline) -> AbstractContextManager[None]:
        """Settle a batch inside: its result events go out together when it ends, if time is left for them."""
        return self._announcer.together(deadline) if self._announcer is not None else nullcontext()

    def done(
        self,
        message: InboundMessage,
        action: AnyAction,
        key: str | None,
        result: ActionResult,
        reply: Reply | None,
        deadline: Deadline,
        metrics: dict[str, float] | None = None,
    ) -> Outcome:
        """A final outcome: announced to whoever asked (result event, task callback), duplicates and dry runs too."""
        logger.info("message done", extra={"summary": result.summary})
        self._announce(message, action.action, key, reply, deadline, details=result.details)
        return Outcome(
            message.message_id,
            Status.DONE,
            action.action,
            result.summary,
            details=result.details,
            metrics=metrics or {},
        )

    def failed(
        self,
        message: InboundMessage,
        action_name: str | None,
        failure: Failure,
        key: str | None,
        reply: Reply | None,
        deadline: Deadline,
    ) -> Outcome:
        """Dead-letter what can never succeed, or what has no try left; give everything else its delay.

        A message that will be retried announces nothing: its outcome is not final yet.
        """
        if failure.disposition is Disposition.DEAD_LETTER:
            return self._dead_letter(message, action_name, failure, key, reply, deadline)
        delay = self._backoff.delay(failure, message.receive_count)
        exhausted, delay = self._retries_left(message, delay, deadline)
        if exhausted is not None:
            # SQS would move it to the DLQ on its next receive, without any reason: send it ourselves.
            return self._dead_letter(message, action_name, failure, key, reply, deadline, exhausted)
        log_fields = _log_fields(failure)
        if delay is not None and message.source_arn and message.receipt_handle:
            try:
                self._queues.delay(message.source_arn, message.receipt_handle, delay, deadline)
                log_fields["retry_in_seconds"] = delay
            except Exception:  # the queue's own visibility timeout still brings it back
                logger.warning("could not set the retry delay", exc_info=True)
        logger.warning("message will be retried", extra=log_fields)
        return Outcome(message.message_id, Status.RETRY, action_name, failure.message, failure)

    def _retries_left(
        self, message: InboundMessage, delay: int | None, deadline: Deadline
    ) -> tuple[str | None, int | None]:
        """Why this was the message's last try (None if it was not), and its delay, ending before it expires."""
        if not message.from_sqs or not message.source_arn:
            return None, delay  # a direct invocation: Lambda's async retries and OnFailure take over
        try:
            facts = self._queues.facts(message.source_arn, deadline)
        except Exception:  # without the redrive policy, SQS's own redrive remains the safety net
            logger.warning("could not read the source queue's redrive policy", exc_info=True)
            return None, delay
        if facts.max_receive_count is not None and message.receive_count >= facts.max_receive_count:
            return f"receive {message.receive_count} of maxReceiveCount {facts.max_receive_count} failed", delay
        back_in = delay if delay is not None else facts.visibility_timeout_seconds
        age = time.time() - message.sent_ms / 1000 if message.sent_ms else None
        # A record older than the queue keeps messages cannot have come from it (an event file, say, run by
        # `invoke` or `sam local invoke`): the queue's retention says nothing of its next try.
        if facts.retention_seconds and age is not None and age <= facts.retention_seconds and back_in is not None:
            left = int(facts.retention_seconds - age - EXPIRY_MARGIN_SECONDS)
            if left < 1:
                return f"the queue keeps messages {facts.retention_seconds} s: too little left for another try", None
            if back_in > left:
                return None, left  # sooner than the back-off wanted, but before the queue would delete it
        return None, delay

    def _dead_letter(
        self,
        message: InboundMessage,
        action_name: str | None,
        failure: Failure,
        key: str | None,
        reply: Reply | None,
        deadline: Deadline,
        exhausted: str | None = None,
    ) -> Outcome:
        log_fields = _log_fields(failure) | ({"retries_exhausted": exhausted} if exhausted else {})
        attributes = dead_letter_attributes(failure, message, exhausted)
        try:
            dead_letter_id = self._queues.dead_letter(message.body, attributes, deadline)
        except Exception:  # the message stays in its queue rather than being lost
            logger.exception(
                "could not send the message to the dead-letter queue; it will be retried", extra=log_fields
            )
            return Outcome(message.message_id, Status.RETRY, action_name, "dead-lettering failed", failure)
        logger.error("message dead-lettered", extra=log_fields | {"dead_letter_message_id": dead_letter_id})
        error = (failure.error_class.value, failure.message, failure.http_status)
        self._announce(message, action_name, key, reply, deadline, error=error)
        return Outcome(message.message_id, Status.DEAD_LETTERED, action_name, failure.message, failure)

    def _announce(
        self,
        message: InboundMessage,
        action: str | None,
        key: str | None,
        reply: Reply | None,
        deadline: Deadline,
        details: dict[str, object] | None = None,
        error: tuple[str, str, int | None] | None = None,
    ) -> None:
        if self._announcer is None or reply is None:
            return
        detail = result_detail(
            message_id=message.message_id,
            action=action,
            idempotency_key=key,
            correlation_id=reply.correlation_id,
            receive_count=message.receive_count,
            details=details,
            error=error,
        )
        try:
            self._announcer.announce(detail, reply, deadline)
        except Exception:  # telling the producer must never undo or repeat what was done
            logger.exception("could not announce the outcome")


def _log_fields(failure: Failure) -> dict[str, object]:
    return {
        "error_class": failure.error_class.value,
        "error_message": failure.message,
        "http_status": failure.http_status,
        "datadog_error": failure.datadog_error,
    }
