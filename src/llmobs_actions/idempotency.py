"""Idempotency: each action takes effect once per key, and the key's record remembers every attempt at it.

One DynamoDB item per action and key, in the layout Powertools Idempotency writes (id `llmobs-actions.v1#`
+ md5 of the key, status, expiration, in_progress_expiration, validation = md5 of the request's fingerprint,
data = the stored result), so that records written by earlier releases, which used Powertools, read as
before. Powertools deletes its record when the action raises: a clone whose answer was lost then looks, to
whichever delivery comes next, like one never tried. Here the record stays, and lists each attempt not yet
settled: what it asked for (its target and name), when it started, and until when it could have been at
work. Every later delivery under the key, whatever brought it, gets those attempts first (`run`'s `perform`).

Two writes an action, as with Powertools:
- begin: one conditional UpdateItem takes the key (new, expired, or in progress past its deadline, for the
  same request) and appends this attempt; the item's old image says what the earlier attempts were, or,
  when the condition fails, that the key is done (its stored result), busy, or used for another request;
- then complete (COMPLETED, the result, the attempts cleared) or release (this attempt's end and whether its
  request may have taken effect, and the key free for the next delivery).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from llmobs_actions.attempts import ActionResult, ContinueLater, EarlierAttempt, Intent
from llmobs_actions.aws_clients import AwsClients, Bounds, Deadline
from llmobs_actions.contract import AnyAction, ensure_resolved
from llmobs_actions.failures import (
    IdempotencyBusyError,
    IdempotencyConflictError,
    IdempotencyStoreError,
    may_have_taken_effect,
)
from llmobs_actions.observability import logger

# Part of every record's key: changing it orphans every stored record, so it never follows module names.
KEY_PREFIX = "llmobs-actions.v1"
# Optional fields the contract gained after records were first written: left out of a fingerprint when
# unset, so that a redelivery across a deployment still matches the record an older release stored.
FIELDS_ADDED_SINCE_V1 = ("event_time", "keep_newest_per_name")
# Names stand for ids, which the fingerprint holds once resolved: a dataset renamed since, or another one
# given the name, is then a different request, never a replay of the stored result.
NAMES = {"project_name", "dataset_name"}
# Lists of ids a request names as a set: the same delete with its ids in another order is the same request.
ID_SETS = ("experiment_ids", "dataset_ids")
INPROGRESS, COMPLETED = "INPROGRESS", "COMPLETED"
USUAL_BOUNDS = Bounds(connect_timeout=2, read_timeout=5, max_attempts=2)
_NAMES = {
    "#id": "id",
    "#expiry": "expiration",
    "#status": "status",
    "#in_progress_expiry": "in_progress_expiration",
    "#validation": "validation",
    "#data": "data",
    "#attempts": "attempts",
    "#checkpoint": "checkpoint",
}


def _earlier_attempt(item: Mapping[str, Any]) -> EarlierAttempt | None:
    """An attempt as the record lists it (a DynamoDB map), or None for one not written by this release."""
    try:
        started = datetime.fromtimestamp(int(item["started_ms"]["N"]) / 1000, UTC)
        ended = item.get("ended_ms", item.get("deadline_ms"))
        until = datetime.fromtimestamp(int(ended["N"]) / 1000, UTC) if ended else started
    except (KeyError, TypeError, ValueError):
        return None
    acted = item.get("may_have_acted", {}).get("BOOL")
    return EarlierAttempt(
        started_at=started,
        until=until,
        target=str(item.get("target", {}).get("S", "")),
        name=item["name"]["S"] if "name" in item else None,
        may_have_acted=acted is not False,
    )


class Idempotency:
    def __init__(self, table_name: str, expires_after_seconds: int, clients: AwsClients | None = None) -> None:
        self._table = table_name
        self._expires_after = expires_after_seconds
        self._clients = clients or AwsClients()

    def run(
        self,
        action: AnyAction,
        key: str,
        intent: Intent,
        perform: Callable[[tuple[EarlierAttempt, ...], Mapping[str, Any] | None], ActionResult],
        deadline: Deadline,
        changed: Callable[[], bool] = lambda: False,
        saved: Callable[[], Mapping[str, Any] | None] = lambda: None,
    ) -> ActionResult:
        """Perform the action unless one with the same key already completed (then return its stored result).

        `perform` is told the earlier attempts under this key that never completed (it settles them first), and
        the checkpoint long work saved in an earlier invocation (it resumes there); stopping with ContinueLater
        saves the next one on the key. `changed` says, when it failed, whether it had changed something before.
        """
        record_id = f"{KEY_PREFIX}#{_md5(f'{action.action}:{key}')}"
        hashes = (_md5(fingerprint(action)), _md5(legacy_fingerprint(action)))
        try:
            attempt_number, earlier, checkpoint = self._begin(record_id, hashes, intent, deadline)
        except _Duplicate as duplicate:
            return duplicate.result
        try:
            result = perform(earlier, checkpoint)
        except ContinueLater as stopped:
            self._release(record_id, attempt_number, True, deadline, stopped.checkpoint, must_save=True)
            raise
        except Exception as error:
            acted = changed() or may_have_taken_effect(error)
            self._release(record_id, attempt_number, acted, deadline, saved())
            raise
        try:
            self._complete(record_id, result, deadline)
        except Exception as error:  # the action ran; only its record could not be completed
            logger.warning(
                "the action ran, but its idempotency record could not be completed",
                extra={"error": str(error)[:300]},
            )
            return ActionResult(result.summary, result.details | {"result_saved": False})
        return result

    def _begin(
        self, record_id: str, hashes: tuple[str, str], intent: Intent, deadline: Deadline
    ) -> tuple[int, tuple[EarlierAttempt, ...], Mapping[str, Any] | None]:
        """Take the key for this attempt: its place in the record's attempts, and the earlier ones."""
        now = time.time()
        attempt = _attempt_item(now, deadline, intent)
        current, legacy = hashes
        values: dict[str, Any] = {
            ":inprogress": {"S": INPROGRESS},
            ":now": {"N": str(int(now))},
            ":now_ms": {"N": str(int(now * 1000))},
            ":expiry": {"N": str(int(now + self._expires_after))},
            ":deadline_ms": attempt["deadline_ms"],
            ":hash": {"S": current},
            ":legacy_hash": {"S": legacy},
            ":this": {"L": [{"M": attempt}]},
            ":none": {"L": []},
        }
        try:
            answer = self._client(deadline).update_item(
                TableName=self._table,
                Key={"id": {"S": record_id}},
                UpdateExpression=(
                    "SET #status = :inprogress, #expiry = :expiry, #in_progress_expiry = :deadline_ms, "
                    "#validation = :hash, #attempts = list_append(if_not_exists(#attempts, :none), :this) "
                    "REMOVE #data"
                ),
                # Powertools' conditions for taking a key, and, for one still holding attempts, the same request
                ConditionExpression=(
                    "attribute_not_exists(#id) OR #expiry < :now OR (#status = :inprogress AND "
                    "attribute_exists(#in_progress_expiry) AND #in_progress_expiry < :now_ms AND "
                    "(#validation IN (:hash, :legacy_hash) OR attribute_not_exists(#validation)))"
                ),
                ExpressionAttributeNames={k: v for k, v in _NAMES.items() if k != "#checkpoint"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except Exception as error:
            old = _old_item(error)
            if old is None:
                raise IdempotencyStoreError(f"idempotency store unavailable: {str(error)[:300]}") from None
            raise _refusal(old, hashes) from None
        old = answer.get("Attributes") or {}
        checkpoint: Mapping[str, Any] | None = None
        if old.get("status", {}).get("S") == COMPLETED or int(old.get("expiration", {}).get("N", "0")) < now:
            previous: list[Any] = []  # a record that expired: its attempts belong to a request long over
        else:
            previous = old.get("attempts", {}).get("L", [])
            checkpoint = _checkpoint(old)
        earlier = tuple(a for a in (_earlier_attempt(item.get("M", {})) for item in previous) if a is not None)
        if earlier:
            logger.info("earlier attempts under this key never completed", extra={"earlier_attempts": len(earlier)})
        return len(old.get("attempts", {}).get("L", [])), earlier, checkpoint

    def _complete(self, record_id: str, result: ActionResult, deadline: Deadline) -> None:
        stored = json.dumps({"summary": result.summary, "details": result.details}, sort_keys=True, default=str)
        self._client(deadline).update_item(
            TableName=self._table,
            Key={"id": {"S": record_id}},
            UpdateExpression="SET #status = :completed, #data = :data, #expiry = :expiry REMOVE #attempts, #checkpoint",
            ExpressionAttributeNames={
                k: _NAMES[k] for k in ("#status", "#data", "#expiry", "#attempts", "#checkpoint")
            },
            ExpressionAttributeValues={
                ":completed": {"S": COMPLETED},
                ":data": {"S": stored},
                ":expiry": {"N": str(int(time.time() + self._expires_after))},
            },
        )

    def _release(
        self,
        record_id: str,
        number: int,
        may_have_acted: bool,
        deadline: Deadline,
        checkpoint: Mapping[str, Any] | None = None,
        must_save: bool = False,
    ) -> None:
        """This attempt is over without completing: say how it ended (and, for long work, where the next one
        resumes), and let the next delivery take the key."""
        update, names, values = _release_update(number, may_have_acted, checkpoint)
        try:
            self._client(deadline).update_item(
                TableName=self._table,
                Key={"id": {"S": record_id}},
                UpdateExpression=update,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except Exception:  # its deadline frees the key all the same; it just says less about this attempt
            if must_save:  # without it, the continuation would start over: refuse to go on
                raise IdempotencyStoreError("could not save where the work stopped") from None
            logger.warning("could not record how the attempt ended", exc_info=True)

    def _client(self, deadline: Deadline) -> Any:
        client = self._clients.within("dynamodb", USUAL_BOUNDS, deadline.seconds_left())
        if client is None:
            raise IdempotencyStoreError("too little time left to write the idempotency record")
        return client


def fingerprint(action: AnyAction) -> str:
    """What the action does, without how it was asked (key, dry run) or whom to tell (correlation id, task
    token): two requests under one key must match, and a resend with a new token is still a duplicate.
    Ids a request names as a set are sorted: their order does not change what is done.

    Names must be resolved first (UnresolvedNameError otherwise): the ids they resolved to are fingerprinted.
    """
    document = _fingerprinted(action)
    for field in ID_SETS:
        if isinstance(document.get(field), list):
            document[field] = sorted(document[field])
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def legacy_fingerprint(action: AnyAction) -> str:
    """The fingerprint releases before ids were a set stored: a record one of them wrote still matches."""
    return hashlib.sha256(json.dumps(_fingerprinted(action), sort_keys=True).encode()).hexdigest()


def _fingerprinted(action: AnyAction) -> dict[str, Any]:
    ensure_resolved(action)
    how_asked = {"idempotency_key", "dry_run", "correlation_id", "task_token"}
    document = action.model_dump(mode="json", exclude=how_asked | NAMES)
    for field in FIELDS_ADDED_SINCE_V1:
        if document.get(field) is None:
            document.pop(field, None)  # unset: the fingerprint a record stored by an older release has
    return document


def _attempt_item(now: float, deadline: Deadline, intent: Intent) -> dict[str, Any]:
    """This attempt as the record lists it: when it started, until when it may work, what it asks for."""
    attempt: dict[str, Any] = {
        "id": {"S": str(uuid.uuid4())},
        "started_ms": {"N": str(int(now * 1000))},
        "deadline_ms": {"N": str(int((now + deadline.seconds_left()) * 1000))},
        "target": {"S": intent.target},
    }
    if intent.name is not None:
        attempt["name"] = {"S": intent.name}
    return attempt


def _release_update(
    number: int, may_have_acted: bool, checkpoint: Mapping[str, Any] | None
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The UpdateItem that ends attempt `number` and frees the key (and saves the checkpoint, if any)."""
    update = (
        f"SET #in_progress_expiry = :zero, #attempts[{number}].ended_ms = :now_ms, "
        f"#attempts[{number}].may_have_acted = :acted"
    )
    names = {k: _NAMES[k] for k in ("#in_progress_expiry", "#attempts")}
    values: dict[str, Any] = {
        ":zero": {"N": "0"},
        ":now_ms": {"N": str(int(time.time() * 1000))},
        ":acted": {"BOOL": may_have_acted},
    }
    if checkpoint is not None:
        update += ", #checkpoint = :checkpoint"
        names["#checkpoint"] = _NAMES["#checkpoint"]
        values[":checkpoint"] = {"S": json.dumps(checkpoint, sort_keys=True, separators=(",", ":"))}
    return update, names, values


def _checkpoint(item: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Where long work under the key stopped, as its last attempt saved it."""
    try:
        saved = json.loads(item["checkpoint"]["S"])
    except (KeyError, TypeError, ValueError):
        return None
    return saved if isinstance(saved, dict) else None


def _md5(text: str) -> str:
    """Powertools' hash of a key or a fingerprint: md5 of its JSON text."""
    return hashlib.md5(json.dumps(text, sort_keys=True).encode(), usedforsecurity=False).hexdigest()


def _old_item(error: Exception) -> dict[str, Any] | None:
    """The item a failed condition found (ALL_OLD), or None when the call failed for another reason."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict) or response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
        return None
    item = response.get("Item")
    return item if isinstance(item, dict) else {}


def _refusal(old: dict[str, Any], hashes: tuple[str, str]) -> Exception:
    stored_hash = old.get("validation", {}).get("S")
    if stored_hash is not None and stored_hash not in hashes:
        return IdempotencyConflictError("idempotency key already used for a different request")
    if old.get("status", {}).get("S") == COMPLETED:
        return _Duplicate(old)
    try:
        held = max(0.0, int(old["in_progress_expiration"]["N"]) / 1000 - time.time())
    except (KeyError, ValueError):
        held = None
    return IdempotencyBusyError("the same idempotency key is being processed elsewhere", held)


class _Duplicate(Exception):
    """The key is done: its stored result, said to be a duplicate."""

    def __init__(self, old: dict[str, Any]) -> None:
        super().__init__("already done under this key")
        try:
            stored = json.loads(old.get("data", {}).get("S") or "{}")
        except ValueError:
            stored = {}
        stored = stored if isinstance(stored, dict) else {}
        details = stored.get("details")
        self.result = ActionResult(
            str(stored.get("summary", "")), (dict(details) if isinstance(details, dict) else {}) | {"duplicate": True}
        )
