"""Lambda entry point: parse -> route -> act -> report, for SQS batches and direct EventBridge invocations."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from llmobs_actions.actions import ActionRunner
from llmobs_actions.aws_clients import AwsClients
from llmobs_actions.backups import Bucket
from llmobs_actions.datadog import DatadogClient
from llmobs_actions.idempotency import Idempotency
from llmobs_actions.keys import KeyStore
from llmobs_actions.messages import is_sqs_event
from llmobs_actions.observability import logger, metrics, observe_datadog_call, trace_datadog_call, traced
from llmobs_actions.outcomes import Status, report
from llmobs_actions.processing import Processor
from llmobs_actions.queues import Queues
from llmobs_actions.results import Announcer
from llmobs_actions.settings import Settings


class RetryLaterError(Exception):
    """Raised for a direct invocation that may succeed later, so Lambda's async retries take over."""


@cache
def processor() -> Processor:
    """Built once per execution environment: settings validated, HTTP pool and clients kept warm."""
    settings = Settings.from_environ()
    clients = AwsClients(max_connections=settings.max_workers)
    datadog = DatadogClient(
        settings.datadog_base_url,
        connect_timeout=settings.connect_timeout_seconds,
        read_timeout=settings.read_timeout_seconds,
        max_connections=settings.max_workers,
        observer=observe_datadog_call,
        tracer=trace_datadog_call,
    )
    runner = ActionRunner(
        datadog,
        KeyStore(settings.secret_id, settings.secret_max_age_seconds, clients=clients),
        settings.delete_chunk_size,
        settings.max_throttle_wait_seconds,
        settings.max_experiment_ids,
        settings.protect_metadata_key,
        Bucket(settings.backup_bucket, settings.backup_prefix, clients, settings.datadog_site)
        if settings.backup_bucket
        else None,
    )
    idempotency = None
    if settings.idempotency_table:
        idempotency = Idempotency(settings.idempotency_table, settings.idempotency_expiry_seconds, clients=clients)
    else:
        logger.warning("IDEMPOTENCY_TABLE is not set: idempotency is OFF, a redelivered message can act twice")
    queues = Queues(settings.dead_letter_queue_url, clients=clients, actions_queue_url=settings.actions_queue_url)
    announcer = Announcer(settings.result_event_bus, settings.result_event_source, clients)
    return Processor(settings, runner, queues, idempotency, announcer)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@traced
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_sqs_event(event):
        outcomes = processor().process_batch(event["Records"], context.get_remaining_time_in_millis)
        report(outcomes)
        return {"batchItemFailures": [{"itemIdentifier": o.message_id} for o in outcomes if o.status is Status.RETRY]}

    outcome = processor().process_direct(event, context.aws_request_id, context.get_remaining_time_in_millis)
    report([outcome])
    if outcome.status is Status.RETRY:
        raise RetryLaterError(f"{outcome.message_id}: {outcome.summary}")
    return outcome.as_dict()
