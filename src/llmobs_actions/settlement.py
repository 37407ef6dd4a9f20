"""Settlement: how a message ends - done, in the dead-letter queue with its reason, or back in its queue until
its next try. Every ending goes through here, so that each is decided, logged and reported in one place.

Every AWS call here is bounded by the invocation's one deadline, in the order that keeps the guarantees: the
message's fate first (the DLQ send, or its retry delay), telling whoever asked last (result events and task
callbacks). Out of time, a message is left to its retry, never both dead-lettered and redelivered."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime

from llmobs_actions.attempts import ActionResult, ContinueLater
from llmobs_actions.aws_clients import Deadline, OutOfTimeError
from llmobs_actions.contract import AnyAction
from llmobs_actions.failures import (
    Backoff,
    BackupRejectedError,
    Disposition,
    Failure,
    classify,
    dead_letter_attributes,
)
from llmobs_actions.messages import CONTINUATION, ORIGINAL_SENT_AT, SOURCE_MESSAGE_ID, InboundMessage
from llmobs_actions.observability import logger
from llmobs_actions.outcomes import Outcome, Status
from llmobs_actions.queues import Queues
from llmobs_actions.results import Announcer, Reply, result_detail

# A retry is scheduled to come back at least this long before its queue's retention would delete it.
EXPIRY_MARGIN_SECONDS = 300
# Lambda's recursive loop detection stops the 17th invocation of a chain SQS -> function -> SQS ("after
# approximately 16 invocations"): a continuation chain ends, with its reason, at this many invocations.
LAMBDA_RECURSION_LIMIT = 16
MAX_INVOCATIONS_IN_A_CHAIN = 14


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
        exhausted, delay = _retries_left(self._queues, message, delay, deadline)
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

    def continued(
        self, message: InboundMessage, action_name: str | None, stopped: ContinueLater, deadline: Deadline
    ) -> Outcome:
        """Long work stopped before the deadline, its checkpoint saved on the key: the request comes back as a
        continuation message, and this delivery ends; a chain Lambda would stop is cut first, with its reason."""
        ended = _chain_ended(message, action_name, stopped)
        if ended is not None:
            return self.failed(message, action_name, ended, None, None, deadline)
        return _continue(self._queues, message, action_name, stopped, deadline)

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


def _retries_left(
    queues: Queues, message: InboundMessage, delay: int | None, deadline: Deadline
) -> tuple[str | None, int | None]:
    """Why this was the message's last try (None if it was not), and its delay, ending before it expires."""
    if not message.from_sqs or not message.source_arn:
        return None, delay  # a direct invocation: Lambda's async retries and OnFailure take over
    try:
        facts = queues.facts(message.source_arn, deadline)
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


def _chain_ended(message: InboundMessage, action_name: str | None, stopped: ContinueLater) -> Failure | None:
    """Lambda stops a chain of SQS -> function -> SQS after 16 invocations (recursive loop detection): the
    chain ends before that, with its reason."""
    hop = message.continuation + 1
    if hop < MAX_INVOCATIONS_IN_A_CHAIN:
        return None
    return classify(
        BackupRejectedError(
            f"{action_name}: {hop} invocations were not enough ({stopped.done_so_far}); Lambda stops a chain of "
            f"{LAMBDA_RECURSION_LIMIT}: give the function a longer FunctionTimeout"
        )
    )


def _continue(
    queues: Queues, message: InboundMessage, action_name: str | None, stopped: ContinueLater, deadline: Deadline
) -> Outcome:
    """The message again, to its queue, body unchanged and the first message's id and time carried (so its key
    and times stay); if it cannot be sent, its own retry resumes from the checkpoint all the same."""
    hop = message.continuation + 1
    try:
        continuation_id = _send_continuation(queues, message, hop, deadline)
    except Exception:
        logger.warning("could not send the continuation; the message will be retried", exc_info=True)
        return Outcome(message.message_id, Status.RETRY, action_name, stopped.done_so_far)
    logger.info(
        "work continues in a new message",
        extra={"done_so_far": stopped.done_so_far, "continuation_id": continuation_id, "invocation": hop + 1},
    )
    return Outcome(message.message_id, Status.CONTINUED, action_name, stopped.done_so_far)


def _send_continuation(queues: Queues, message: InboundMessage, hop: int, deadline: Deadline) -> str:
    """The message again, to its queue (a direct invocation's: the actions queue), as the `hop`th continuation."""
    queue_url = (
        queues.queue_url(message.source_arn, deadline)
        if message.from_sqs and message.source_arn
        else queues.actions_queue_url
    )
    if queue_url is None:
        raise OutOfTimeError("no actions queue to continue in (ACTIONS_QUEUE_URL is not set)")
    sent_ms = message.original_sent_ms or message.sent_ms or int(time.time() * 1000)
    attributes = {
        SOURCE_MESSAGE_ID: message.first_message_id,
        ORIGINAL_SENT_AT: datetime.fromtimestamp(sent_ms / 1000, UTC).isoformat(),
        CONTINUATION: str(hop),
    }
    return queues.send(queue_url, message.body, attributes, deadline)


def _log_fields(failure: Failure) -> dict[str, object]:
    return {
        "error_class": failure.error_class.value,
        "error_message": failure.message,
        "http_status": failure.http_status,
        "datadog_error": failure.datadog_error,
    }
