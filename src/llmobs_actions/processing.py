"""Processing: one message through parse -> act -> settle, and a batch of them on a bounded thread pool."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from llmobs_actions.actions import ActionRunner
from llmobs_actions.attempts import ActionResult, Attempt, ContinueLater, EarlierAttempt
from llmobs_actions.aws_clients import Deadline, OutOfTimeError
from llmobs_actions.contract import AnyAction, InvalidAction, parse_action
from llmobs_actions.datadog import DatadogHTTPError, RateLimit
from llmobs_actions.failures import Backoff, BackupNotConfiguredError, ErrorClass, classify
from llmobs_actions.idempotency import Idempotency
from llmobs_actions.messages import (
    InboundMessage,
    Payload,
    from_direct_event,
    from_sqs_record,
    parse_timestamp,
    unwrap,
    unwrap_document,
)
from llmobs_actions.observability import logger
from llmobs_actions.outcomes import Outcome
from llmobs_actions.queues import Queues
from llmobs_actions.results import RESULT_DETAIL_TYPES, Announcer, Reply
from llmobs_actions.settings import Settings
from llmobs_actions.settlement import Settlement

RemainingMillis = Callable[[], int]
# Lambda keeps retrying an asynchronous event for at most six hours (MaximumEventAgeInSeconds).
MAX_ASYNC_EVENT_AGE = timedelta(hours=6)


class Processor:
    def __init__(
        self,
        settings: Settings,
        runner: ActionRunner,
        queues: Queues,
        idempotency: Idempotency | None,
        announcer: Announcer | None = None,
    ) -> None:
        self._settings = settings
        self._runner = runner
        self._idempotency = idempotency
        backoff = Backoff(
            settings.retry_base_delay_seconds, settings.retry_backoff_factor, settings.max_retry_delay_seconds
        )
        self._settlement = Settlement(queues, backoff, announcer)
        # urllib3 and boto3 clients are thread-safe, so records of a batch wait on Datadog together.
        self._pool = ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix="record")

    def process_batch(self, records: list[Mapping[str, Any]], remaining_ms: RemainingMillis) -> list[Outcome]:
        messages = [from_sqs_record(record) for record in records]
        self._settlement.prepare(messages, Deadline(remaining_ms))
        with self._settlement.together(Deadline(remaining_ms)):
            futures = [self._pool.submit(self._process_logged, message, None, remaining_ms) for message in messages]
            return [future.result() for future in futures]

    def process_direct(self, event: Mapping[str, Any], request_id: str, remaining_ms: RemainingMillis) -> Outcome:
        return self._process_logged(from_direct_event(event, request_id), event, remaining_ms)

    def _process_logged(
        self, message: InboundMessage, document: object | None, remaining_ms: RemainingMillis
    ) -> Outcome:
        logger.thread_safe_append_keys(message_id=message.message_id, receive_count=message.receive_count)
        try:
            return self._process(message, document, remaining_ms)
        finally:
            logger.thread_safe_clear_keys()

    def _process(self, message: InboundMessage, document: object | None, remaining_ms: RemainingMillis) -> Outcome:
        action_name: str | None = None
        key: str | None = None
        reply: Reply | None = Reply()  # whom to tell about the outcome; None: nobody
        try:
            if message.malformed:
                raise InvalidAction(message.malformed)
            payload = unwrap(message.body) if document is None else unwrap_document(document)
            if payload.detail_type in RESULT_DETAIL_TYPES:
                reply = None  # announcing it would feed the loop that brought it here
                raise InvalidAction(
                    f"a result event ({payload.detail_type}), not an action: the rule that sent it to the queue "
                    "must not match result events"
                )
            reply = Reply.from_payload(payload.action)
            action_name = _claimed_action(payload.action)
            logger.thread_safe_append_keys(action=action_name)
            action = parse_action(payload.action, max_experiment_ids=self._settings.max_experiment_ids)
            key = action.idempotency_key or payload.event_id or message.first_message_id
            logger.thread_safe_append_keys(idempotency_key=key)
            attempt = self._attempt(message, payload, action, remaining_ms)
            # Names become ids before anything else: the idempotency record is about what they named now.
            action, resolved = self._runner.resolve(action, attempt)
            if resolved:
                logger.thread_safe_append_keys(**resolved)
            result = self._act(action, key, attempt, message, remaining_ms)
            if resolved:
                result = ActionResult(result.summary, result.details | {"resolved": resolved})
        except ContinueLater as stopped:  # long work: its checkpoint is on the key, a continuation goes on
            return self._settlement.continued(message, action_name, stopped, Deadline(remaining_ms))
        except Exception as error:  # every failure, ours included, ends in the DLQ or back in the queue
            failure = classify(error)
            if failure.error_class is ErrorClass.INTERNAL:
                logger.exception("unexpected error handling the message")
            return self._settlement.failed(message, action_name, failure, key, reply, Deadline(remaining_ms))
        metrics = self._runner.metrics(action.action, result.details)
        return self._settlement.done(message, action, key, result, reply, Deadline(remaining_ms), metrics)

    def _act(
        self, action: AnyAction, key: str, attempt: Attempt, message: InboundMessage, remaining_ms: RemainingMillis
    ) -> ActionResult:
        """Do the action once per key: the key's record says what earlier attempts under it asked for, and the
        action settles those first (adopts what they made, or does it now), whatever brought this delivery."""
        prepared = self._runner.prepare(action, attempt)  # names filled before the record says what they are
        if action.dry_run:
            return self._runner.run(prepared, attempt)
        if self._idempotency is None:
            try:
                guessed = _guessed_earlier(message, attempt, prepared, self._runner)
                return self._runner.run(prepared, attempt.after(guessed))
            except ContinueLater:  # where it stopped would be kept on the key's record: there is none
                raise BackupNotConfiguredError(
                    f"{action.action} needs more than one invocation, and continuing needs IDEMPOTENCY_TABLE"
                ) from None
        wait = self._runner.throttled_for(action)
        if wait is not None and wait > self._settings.max_throttle_wait_seconds:
            # Checked before the idempotency record is written, so that a throttled try costs no write.
            raise DatadogHTTPError(action.action, 429, "rate limit used up (not sent)", RateLimit(reset_seconds=wait))
        if not attempt.has_time(0):  # an attempt that takes the key must have the time to act under it
            raise OutOfTimeError("too little Lambda time left to start the action")
        result = self._idempotency.run(
            action,  # its fingerprint: the request as asked, templates unfilled (as earlier releases stored it)
            key,
            self._runner.intent(prepared),
            lambda earlier, checkpoint: self._runner.run(prepared, attempt.after(earlier, checkpoint)),
            Deadline(remaining_ms),
            changed=lambda: attempt.progress.changed,
            saved=lambda: attempt.progress.checkpoint,
        )
        if result.details.get("duplicate"):
            logger.info("duplicate suppressed: already done under this key", extra={"stored": result.details})
        return result

    def _attempt(
        self, message: InboundMessage, payload: Payload, action: AnyAction, remaining_ms: RemainingMillis
    ) -> Attempt:
        settings = self._settings

        def has_time(wait_seconds: float) -> bool:
            return remaining_ms() - wait_seconds * 1000 >= settings.call_budget_ms

        def read_timeout() -> float:
            return settings.read_timeout_for(remaining_ms())

        # The time the request is for: the action's own (a Scheduler input), else its EventBridge event's.
        event_time = parse_timestamp(getattr(action, "event_time", None) or payload.event_time)
        if payload.failure_condition is not None:
            # Lambda's asynchronous tries came before this one; the record's time says when they ended.
            logger.info(
                "replaying the event of a Lambda OnFailure record", extra={"condition": payload.failure_condition}
            )
            event_time = event_time or parse_timestamp(payload.failure_recorded_at)  # not the redrive's
        elif message.from_sqs and event_time is None:
            # A scheduler or producer sending straight to the queue: when SQS first got the message (a copy
            # redriven from the DLQ carries the original's time: days may have passed since).
            sent = message.original_sent_ms or message.sent_ms
            event_time = datetime.fromtimestamp(sent / 1000, UTC) if sent else None
        return Attempt(
            has_time=has_time,
            read_timeout=read_timeout,
            event_time=event_time,
            seconds_left=lambda: remaining_ms() / 1000,
        )


def _guessed_earlier(
    message: InboundMessage, attempt: Attempt, prepared: AnyAction, runner: ActionRunner
) -> tuple[EarlierAttempt, ...]:
    """Without an idempotency record (IDEMPOTENCY_TABLE unset), what the delivery itself says of earlier tries:
    an SQS message received before, or a direct invocation (Lambda's async retries carry no attempt number)."""
    now = datetime.now(UTC)
    if message.from_sqs:
        if message.receive_count <= 1 or not message.first_received_ms:
            return ()
        since = datetime.fromtimestamp(message.first_received_ms / 1000, UTC)
    else:
        since = attempt.event_time or now - MAX_ASYNC_EVENT_AGE
    intent = runner.intent(prepared)
    return (EarlierAttempt(since, now, intent.target, intent.name, may_have_acted=True),)


def _claimed_action(document: object) -> str | None:
    claimed = document.get("action") if isinstance(document, Mapping) else None
    return claimed[:64] if isinstance(claimed, str) else None
