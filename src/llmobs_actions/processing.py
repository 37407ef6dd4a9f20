"""Processing: one message through parse -> act -> settle, and a batch of them on a bounded thread pool."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from llmobs_actions.actions import ActionResult, ActionRunner, Attempt
from llmobs_actions.contract import AnyAction, InvalidAction, parse_action
from llmobs_actions.datadog import DatadogHTTPError, RateLimit
from llmobs_actions.failures import Backoff, ErrorClass, classify
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

    def register(self, context: LambdaContext) -> None:
        if self._idempotency is not None:
            self._idempotency.register(context)

    def process_batch(self, records: list[Mapping[str, Any]], remaining_ms: RemainingMillis) -> list[Outcome]:
        messages = [from_sqs_record(record) for record in records]
        with self._settlement.together():
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
            key = action.idempotency_key or payload.event_id or message.message_id
            logger.thread_safe_append_keys(idempotency_key=key)
            attempt = self._attempt(message, payload, action, remaining_ms)
            # Names become ids before anything else: the idempotency record is about what they named now.
            action, resolved = self._runner.resolve(action, attempt)
            if resolved:
                logger.thread_safe_append_keys(**resolved)
            result = self._act(action, key, attempt)
            if resolved:
                result = ActionResult(result.summary, result.details | {"resolved": resolved})
        except Exception as error:  # every failure, ours included, ends in the DLQ or back in the queue
            failure = classify(error)
            if failure.error_class is ErrorClass.INTERNAL:
                logger.exception("unexpected error handling the message")
            return self._settlement.failed(message, action_name, failure, key, reply)
        return self._settlement.done(message, action, key, result, reply)

    def _act(self, action: AnyAction, key: str, attempt: Attempt) -> ActionResult:
        if action.dry_run or self._idempotency is None:
            return self._runner.run(action, attempt)
        wait = self._runner.throttled_for(action)
        if wait is not None and wait > self._settings.max_throttle_wait_seconds:
            # Checked before the idempotency record is written, so that a throttled try costs no write.
            raise DatadogHTTPError(action.action, 429, "rate limit used up (not sent)", RateLimit(reset_seconds=wait))
        result = self._idempotency.run(action, key, lambda: self._runner.run(action, attempt))
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
            # Lambda's asynchronous tries came before this one: they ran at most its longest event age
            # before the record was made, and the event's own time, if it has one, says when they began.
            recorded = parse_timestamp(payload.failure_recorded_at)
            logger.info(
                "replaying the event of a Lambda OnFailure record", extra={"condition": payload.failure_condition}
            )
            return Attempt(
                has_time=has_time,
                read_timeout=read_timeout,
                may_have_run_before=True,
                first_try_at=event_time or (recorded - MAX_ASYNC_EVENT_AGE if recorded else None),
                event_time=event_time or recorded,  # not the redrive's: days may have passed
            )
        if message.from_sqs:
            first, sent = message.first_received_ms, message.sent_ms
            return Attempt(
                has_time=has_time,
                read_timeout=read_timeout,
                may_have_run_before=message.receive_count > 1,
                first_try_at=datetime.fromtimestamp(first / 1000, UTC) if first else None,
                # A scheduler or producer sending straight to the queue: the time SQS got the message.
                event_time=event_time or (datetime.fromtimestamp(sent / 1000, UTC) if sent else None),
            )
        # Lambda's async retries carry no attempt number: assume an earlier try may exist.
        return Attempt(
            has_time=has_time,
            read_timeout=read_timeout,
            may_have_run_before=True,
            first_try_at=event_time,
            event_time=event_time,
        )


def _claimed_action(document: object) -> str | None:
    claimed = document.get("action") if isinstance(document, Mapping) else None
    return claimed[:64] if isinstance(claimed, str) else None
