"""Idempotency: every action takes effect once per key, with Powertools Idempotency on DynamoDB."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from llmobs_actions.actions import ActionResult
from llmobs_actions.aws_clients import AwsClients
from llmobs_actions.contract import AnyAction, ensure_resolved
from llmobs_actions.failures import IdempotencyBusyError, IdempotencyConflictError, IdempotencyStoreError
from llmobs_actions.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Part of every record's key: changing it orphans every stored record, so it never follows module names.
KEY_PREFIX = "llmobs-actions.v1"
# Optional fields the contract gained after records were first written: left out of a fingerprint when
# unset, so that a redelivery across a deployment still matches the record an older release stored.
FIELDS_ADDED_SINCE_V1 = ("event_time", "keep_newest_per_name")
# Names stand for ids, which the fingerprint holds once resolved: a dataset renamed since, or another one
# given the name, is then a different request, never a replay of the stored result.
NAMES = {"project_name", "dataset_name"}


class Idempotency:
    def __init__(self, table_name: str, expires_after_seconds: int, clients: AwsClients | None = None) -> None:
        # Imported here, at the first invocation: they pull in boto3, which the import of the handler
        # (the cold start every invocation pays for) does not need.
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            exceptions,
            idempotent_function,
        )

        self._errors = exceptions
        self._config = IdempotencyConfig(
            event_key_jmespath="key",
            payload_validation_jmespath="fingerprint",  # same key, different request: a conflict
            raise_on_no_idempotency_key=True,
            expires_after_seconds=expires_after_seconds,
            response_hook=_mark_duplicate,
        )
        # One persistence layer per decorated function: Powertools keeps the first configuration it sees.
        dynamodb = (clients or AwsClients()).client("dynamodb", connect_timeout=2, read_timeout=5, max_attempts=2)
        layer = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=dynamodb)
        self._once = idempotent_function(
            data_keyword_argument="request", persistence_store=layer, config=self._config, key_prefix=KEY_PREFIX
        )(_perform)

    def register(self, context: LambdaContext) -> None:
        """Every invocation: an interrupted attempt's record then expires with that invocation's deadline."""
        self._config.register_lambda_context(context)

    def run(self, action: AnyAction, key: str, perform: Callable[[], ActionResult]) -> ActionResult:
        """Perform the action unless one with the same key already completed; then return its stored result."""
        request = {"key": f"{action.action}:{key}", "fingerprint": fingerprint(action)}
        errors = self._errors
        performed: list[ActionResult] = []

        def perform_once() -> ActionResult:
            performed.append(perform())
            return performed[-1]

        try:
            stored: dict[str, Any] = self._once(request=request, perform=perform_once)
        except errors.IdempotencyValidationError:
            raise IdempotencyConflictError("idempotency key already used for a different request") from None
        except errors.IdempotencyAlreadyInProgressError:
            raise IdempotencyBusyError("the same idempotency key is being processed elsewhere") from None
        except (errors.IdempotencyPersistenceLayerError, errors.IdempotencyPersistenceConnectionError) as error:
            if performed:
                # The action ran; only its record could not be completed. Retrying would run it again.
                logger.warning(
                    "the action ran, but its idempotency record could not be completed",
                    extra={"error": str(error)[:300]},
                )
                return ActionResult(performed[-1].summary, performed[-1].details | {"result_saved": False})
            raise IdempotencyStoreError(f"idempotency store unavailable: {str(error)[:300]}") from None
        details = dict(stored.get("details") or {})
        if stored.get("duplicate"):
            details["duplicate"] = True
        return ActionResult(str(stored.get("summary", "")), details)


def fingerprint(action: AnyAction) -> str:
    """What the action does, without how it was asked (key, dry run) or whom to tell (correlation id, task
    token): two requests under one key must match, and a resend with a new token is still a duplicate.

    Names must be resolved first (UnresolvedNameError otherwise): the ids they resolved to are fingerprinted.
    """
    ensure_resolved(action)
    how_asked = {"idempotency_key", "dry_run", "correlation_id", "task_token"}
    document = action.model_dump(mode="json", exclude=how_asked | NAMES)
    for field in FIELDS_ADDED_SINCE_V1:
        if document.get(field) is None:
            document.pop(field, None)  # unset: the fingerprint a record stored by an older release has
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def _perform(request: dict[str, str], perform: Callable[[], ActionResult]) -> dict[str, Any]:
    result = perform()
    return {"summary": result.summary, "details": result.details}


def _mark_duplicate(response: Any, idempotent_data: DataRecord) -> Any:
    return dict(response or {}) | {"duplicate": True}
