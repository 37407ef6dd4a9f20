"""Deleting experiments or datasets by id: in chunks of DELETE_CHUNK_SIZE, and correct whether Datadog answers
an id an earlier attempt already deleted with success or with an error."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from llmobs_actions.actions.base import DatadogApi, Tools
from llmobs_actions.attempts import ActionResult, Attempt
from llmobs_actions.datadog import DatadogHTTPError, DatadogKeys
from llmobs_actions.observability import logger

# Log lines name at most this many ids (and say how many there were): a line must stay readable and small.
LOGGED_IDS = 100
# How Datadog may answer a delete of an experiment or dataset that is already (soft-)deleted: its spec
# documents only 204, but a retry must not fail whichever way it answers.
ALREADY_GONE_STATUSES = frozenset({400, 404})


@dataclass(frozen=True)
class Deletion:
    """Ids of one kind, and the Datadog call that deletes a chunk of them."""

    kind: str
    ids: list[str]
    delete: Callable[[DatadogApi, list[str], DatadogKeys, float | None], None]

    @classmethod
    def of_experiments(cls, ids: list[str]) -> Deletion:
        def delete(api: DatadogApi, chunk: list[str], keys: DatadogKeys, timeout: float | None) -> None:
            api.delete_experiments(keys, chunk, read_timeout=timeout)

        return cls("experiment", ids, delete)

    @classmethod
    def of_datasets(cls, project_id: str, ids: list[str]) -> Deletion:
        def delete(api: DatadogApi, chunk: list[str], keys: DatadogKeys, timeout: float | None) -> None:
            api.delete_datasets(keys, project_id, chunk, read_timeout=timeout)

        return cls("dataset", ids, delete)


def delete(what: Deletion, dry_run: bool, attempt: Attempt, tools: Tools) -> ActionResult:
    """Delete in chunks; after an earlier attempt that may have deleted some, an id refused as gone is gone."""
    ids, kind = what.ids, what.kind
    if dry_run:
        logger.info(f"dry run: would delete {kind}s", extra={"count": len(ids), f"{kind}_ids": ids[:LOGGED_IDS]})
        return ActionResult(
            f"dry run: would delete {len(ids)} {kind}(s)",
            {"dry_run": True, "to_delete": len(ids), f"{kind}_ids_sha256": ids_digest(ids)},
        )
    chunks = [ids[start : start + tools.delete_chunk_size] for start in range(0, len(ids), tools.delete_chunk_size)]
    gone: list[str] = []
    for number, chunk in enumerate(chunks, start=1):
        try:
            tools.calls.call(attempt, partial(what.delete, tools.datadog, chunk))
            attempt.progress.changed = True
        except DatadogHTTPError as error:
            if error.status not in ALREADY_GONE_STATUSES or not attempt.may_have_run_before:
                raise
            # An earlier try may have deleted some of these, and Datadog may refuse ids it already
            # soft-deleted: delete one by one; an id refused alone is gone already.
            gone += _delete_one_by_one(what, chunk, attempt, tools)
            attempt.progress.changed = True
        logger.debug("chunk deleted", extra={"chunk": number, "chunks": len(chunks), "size": len(chunk)})
    logger.info(
        f"{kind}s deleted",
        extra={"deleted": len(ids) - len(gone), "already_gone": len(gone), "already_gone_ids": gone[:LOGGED_IDS]},
    )
    # Counts and a digest, never the ids: the stored result must stay small whatever the number of ids
    # (a DynamoDB item holds at most 400 KB; 10,000 ids alone are about 380 KB).
    details: dict[str, object] = {
        "deleted": len(ids) - len(gone),
        "already_gone": len(gone),
        f"{kind}_ids_sha256": ids_digest(ids),
    }
    return ActionResult(f"deleted {len(ids) - len(gone)} {kind}(s)", details)


def _delete_one_by_one(what: Deletion, chunk: list[str], attempt: Attempt, tools: Tools) -> list[str]:
    gone = []
    for item_id in chunk:
        try:
            tools.calls.call(attempt, partial(what.delete, tools.datadog, [item_id]))
        except DatadogHTTPError as error:
            if error.status not in ALREADY_GONE_STATUSES:
                raise
            gone.append(item_id)
    return gone


def ids_digest(ids: list[str]) -> str:
    """A short fingerprint of a set of ids, to tell two results apart without storing the ids."""
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()
