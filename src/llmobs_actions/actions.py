"""The actions themselves: clone a dataset, delete experiments, each against a Datadog API it is given."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Protocol, TypeVar

from llmobs_actions.contract import AnyAction, CloneDataset, DeleteExperiments, PruneExperiments, is_safe_id
from llmobs_actions.datadog import (
    ClonedDataset,
    DatadogHTTPError,
    DatadogKeys,
    DatasetSummary,
    ExperimentSummary,
    RateLimit,
)
from llmobs_actions.failures import AUTH_STATUSES, AuthRejectedError, OutOfTimeError, PruneRefusedError
from llmobs_actions.messages import parse_timestamp
from llmobs_actions.observability import logger
from llmobs_actions.settings import EXPERIMENT_IDS_CEILING
from llmobs_actions.templates import render

T = TypeVar("T")
# Log lines name at most this many ids (and say how many there were): a line must stay readable and small.
LOGGED_IDS = 100
# One Datadog call, given the keys and how long it may wait for its answer.
DatadogCall = Callable[[DatadogKeys, float | None], T]
# The Datadog operation each action starts with: its rate limit decides whether the action can start.
FIRST_OPERATION = {
    "clone_dataset": "clone_dataset",
    "delete_experiments": "delete_experiments",
    "prune_experiments": "list_experiments",
}
# How Datadog may answer a delete of an experiment that is already (soft-)deleted: its spec documents
# only 204, but a retry must not fail whichever way it answers.
ALREADY_GONE_STATUSES = frozenset({400, 404})
# Clocks of Lambda, SQS and Datadog disagree a little; a clone up to this much "older" than the
# first delivery still counts as ours.
CLOCK_SKEW = timedelta(minutes=2)


class DatadogApi(Protocol):
    """The Datadog calls actions make; `read_timeout` caps a call's wait for its answer (the Lambda deadline)."""

    def clone_dataset(
        self,
        keys: DatadogKeys,
        project_id: str,
        dataset_id: str,
        name: str,
        description: str | None,
        *,
        read_timeout: float | None = None,
    ) -> ClonedDataset: ...
    def delete_experiments(
        self, keys: DatadogKeys, experiment_ids: list[str], *, read_timeout: float | None = None
    ) -> None: ...
    def find_datasets_by_name(
        self, keys: DatadogKeys, project_id: str, name: str, *, read_timeout: float | None = None
    ) -> list[DatasetSummary]: ...
    def dataset_name(
        self, keys: DatadogKeys, project_id: str, dataset_id: str, *, read_timeout: float | None = None
    ) -> str | None: ...
    def list_experiments(
        self,
        keys: DatadogKeys,
        project_id: str,
        dataset_id: str | None,
        cursor: str | None,
        limit: int = 100,
        *,
        read_timeout: float | None = None,
    ) -> tuple[list[ExperimentSummary], str | None]: ...
    def throttled_for(self, operation: str) -> float | None: ...


class KeySource(Protocol):
    def current(self) -> DatadogKeys: ...
    def refresh(self, rejected: DatadogKeys) -> DatadogKeys: ...


@dataclass(frozen=True)
class Attempt:
    """What this try knows about earlier tries of the same message."""

    has_time: Callable[[float], bool]  # time left to start a call after waiting this many seconds?
    read_timeout: Callable[[], float | None] = lambda: None  # how long a call started now may wait for its answer
    may_have_run_before: bool = False
    first_try_at: datetime | None = None
    event_time: datetime | None = None  # what name templates call {event_time}; None: now


@dataclass(frozen=True)
class ActionResult:
    summary: str
    details: dict[str, object] = field(default_factory=dict)


class ActionRunner:
    def __init__(
        self,
        datadog: DatadogApi,
        keys: KeySource,
        delete_chunk_size: int,
        max_throttle_wait_seconds: float = 0,
        max_experiment_ids: int = EXPERIMENT_IDS_CEILING,
    ) -> None:
        self._datadog = datadog
        self._keys = keys
        self._chunk = delete_chunk_size
        self._max_wait = max_throttle_wait_seconds
        self._max_ids = max_experiment_ids  # the most experiments one message may delete, prunes included

    def throttled_for(self, action: AnyAction) -> float | None:
        """Seconds before Datadog takes the action's first call, when that call's rate limit is used up."""
        return self._datadog.throttled_for(FIRST_OPERATION[action.action])

    def run(self, action: AnyAction, attempt: Attempt) -> ActionResult:
        if isinstance(action, CloneDataset):
            return self._clone(action, attempt)
        if isinstance(action, PruneExperiments):
            return self._prune(action, attempt)
        return self._delete(action, attempt)

    def _clone(self, action: CloneDataset, attempt: Attempt) -> ActionResult:
        action = self._with_names_rendered(action, attempt)
        if action.dry_run:
            logger.info(
                "dry run: would clone dataset",
                extra={"project_id": action.project_id, "dataset_id": action.dataset_id, "new_name": action.name},
            )
            return ActionResult(
                f"dry run: would clone {action.dataset_id} as {action.name!r}", {"dry_run": True, "name": action.name}
            )
        if attempt.may_have_run_before:
            adopted = self._earlier_clone(action, attempt)
            if adopted is not None:
                logger.info("adopted the dataset an earlier attempt created", extra={"new_dataset_id": adopted.id})
                return ActionResult(
                    f"cloned earlier as {adopted.id}",
                    {"new_dataset_id": adopted.id, "name": adopted.name, "current_version": None, "adopted": True},
                )
        cloned = self._call(
            attempt,
            lambda keys, timeout: self._datadog.clone_dataset(
                keys, action.project_id, action.dataset_id, action.name, action.description, read_timeout=timeout
            ),
        )
        if cloned.missing:
            # The clone happened; retrying would make a second one. Say what drifted and move on.
            logger.warning(
                "clone succeeded but Datadog's answer lacked expected fields",
                extra={"missing_fields": list(cloned.missing)},
            )
        logger.info("dataset cloned", extra={"new_dataset_id": cloned.id, "current_version": cloned.current_version})
        return ActionResult(
            f"cloned {action.dataset_id} as {cloned.id}",
            {
                "new_dataset_id": cloned.id,
                "name": cloned.name or action.name,
                "current_version": cloned.current_version,
            },
        )

    def _with_names_rendered(self, action: CloneDataset, attempt: Attempt) -> CloneDataset:
        """The action with its name templates filled: the same for every retry of one message."""
        moment = attempt.event_time or datetime.now(UTC)

        def source_name() -> str:
            found = self._call(
                attempt,
                lambda keys, timeout: self._datadog.dataset_name(
                    keys, action.project_id, action.dataset_id, read_timeout=timeout
                ),
            )
            if found is None:
                raise DatadogHTTPError("get_dataset", 404, "source dataset not found", RateLimit())
            return found

        name = render(action.name, moment, source_name)
        description = render(action.description, moment, source_name) if action.description else action.description
        if (name, description) == (action.name, action.description):
            return action
        return action.model_copy(update={"name": name, "description": description})

    def _earlier_clone(self, action: CloneDataset, attempt: Attempt) -> DatasetSummary | None:
        """A dataset with the target name created since the first try is the one that try made."""
        if attempt.first_try_at is None:
            return None
        since = attempt.first_try_at - CLOCK_SKEW
        candidates = self._call(
            attempt,
            lambda keys, timeout: self._datadog.find_datasets_by_name(
                keys, action.project_id, action.name, read_timeout=timeout
            ),
        )
        ours = [(created, c) for c in candidates if (created := parse_timestamp(c.created_at)) and created >= since]
        return min(ours, key=lambda pair: pair[0])[1] if ours else None

    def _prune(self, action: PruneExperiments, attempt: Attempt) -> ActionResult:
        """Select with the list endpoint (every page), refuse past the cap, then delete like delete_experiments."""
        now = attempt.event_time or datetime.now(UTC)
        cutoff = now - timedelta(days=action.older_than_days) if action.older_than_days is not None else None
        seen: set[str] = set()
        dated: list[tuple[datetime, str]] = []
        undated: list[str] = []
        refused_ids = 0
        cursor: str | None = None
        while True:
            page, cursor = self._call(attempt, partial(self._list_page, action, cursor))
            for experiment in page:
                if experiment.id in seen:
                    continue  # listed again on a later page while the list changed
                seen.add(experiment.id)
                if not is_safe_id(experiment.id):
                    refused_ids += 1
                    logger.warning("skipped an experiment id the contract refuses", extra={"id": experiment.id[:200]})
                    continue
                created = parse_timestamp(experiment.created_at)
                if action.name_prefix is not None and not experiment.name.startswith(action.name_prefix):
                    continue
                if cutoff is not None and (created is None or created >= cutoff):
                    continue  # an experiment whose age is unknown is never old enough
                if created is None:
                    undated.append(experiment.id)
                else:
                    dated.append((created, experiment.id))
            if cursor is None:
                break
        dated.sort(reverse=True)  # newest first, by the parsed time (offsets and precisions differ)
        doomed = [experiment_id for _, experiment_id in dated[action.keep_newest :]]
        if action.keep_newest == 0:
            doomed += undated  # selected by name alone; with keep_newest they cannot be ranked, so they stay
        summary: dict[str, object] = {
            "matching": len(dated) + len(undated),
            "kept_newest": min(action.keep_newest, len(dated)),
            "kept_unknown_age": len(undated) if action.keep_newest else 0,
            "skipped_unsafe_ids": refused_ids,
            "to_delete": len(doomed),
            "dry_run": action.dry_run,
        }
        self._refuse_past_the_cap(len(doomed), action.max_deletions)
        log_ids = {"experiment_ids": doomed[:LOGGED_IDS], "experiment_ids_listed": min(len(doomed), LOGGED_IDS)}
        if action.dry_run or not doomed:
            logger.info("prune summary", extra=summary | log_ids | {"deleted": 0})
            return ActionResult(
                f"would delete {len(doomed)} experiment(s)" if action.dry_run else "nothing to prune",
                summary | {"experiment_ids_sha256": ids_digest(doomed)},
            )
        deleted = self._delete(DeleteExperiments(action="delete_experiments", experiment_ids=doomed), attempt)
        logger.info("prune summary", extra=summary | log_ids | {"deleted": deleted.details.get("deleted")})
        return ActionResult(f"pruned {len(doomed)} experiment(s)", summary | deleted.details)

    def _refuse_past_the_cap(self, count: int, max_deletions: int) -> None:
        if count > max_deletions:
            raise PruneRefusedError(
                f"the selector matches {count} experiments to delete, more than max_deletions "
                f"({max_deletions}); nothing was deleted"
            )
        if count > self._max_ids:
            raise PruneRefusedError(
                f"the selector matches {count} experiments to delete, more than this deployment deletes "
                f"for one message (MAX_EXPERIMENT_IDS {self._max_ids}); nothing was deleted"
            )

    def _list_page(
        self, action: PruneExperiments, cursor: str | None, keys: DatadogKeys, timeout: float | None
    ) -> tuple[list[ExperimentSummary], str | None]:
        return self._datadog.list_experiments(keys, action.project_id, action.dataset_id, cursor, read_timeout=timeout)

    def _delete(self, action: DeleteExperiments, attempt: Attempt) -> ActionResult:
        ids = action.experiment_ids
        if action.dry_run:
            logger.info(
                "dry run: would delete experiments", extra={"count": len(ids), "experiment_ids": ids[:LOGGED_IDS]}
            )
            return ActionResult(
                f"dry run: would delete {len(ids)} experiment(s)",
                {"dry_run": True, "to_delete": len(ids), "experiment_ids_sha256": ids_digest(ids)},
            )
        chunks = [ids[start : start + self._chunk] for start in range(0, len(ids), self._chunk)]
        gone: list[str] = []
        for number, chunk in enumerate(chunks, start=1):
            try:
                self._call(attempt, partial(self._delete_chunk, chunk))
            except DatadogHTTPError as error:
                if error.status not in ALREADY_GONE_STATUSES or not attempt.may_have_run_before:
                    raise
                # An earlier try may have deleted some of these, and Datadog may refuse ids it already
                # soft-deleted: delete one by one; an id refused alone is gone already.
                gone += self._delete_one_by_one(chunk, attempt)
            logger.debug("chunk deleted", extra={"chunk": number, "chunks": len(chunks), "size": len(chunk)})
        logger.info(
            "experiments deleted",
            extra={"deleted": len(ids) - len(gone), "already_gone": len(gone), "already_gone_ids": gone[:LOGGED_IDS]},
        )
        # Counts and a digest, never the ids: the stored result must stay small whatever the number of ids
        # (a DynamoDB item holds at most 400 KB; 10,000 ids alone are about 380 KB).
        details: dict[str, object] = {
            "deleted": len(ids) - len(gone),
            "already_gone": len(gone),
            "experiment_ids_sha256": ids_digest(ids),
        }
        return ActionResult(f"deleted {len(ids) - len(gone)} experiment(s)", details)

    def _delete_one_by_one(self, chunk: list[str], attempt: Attempt) -> list[str]:
        gone = []
        for experiment_id in chunk:
            try:
                self._call(attempt, partial(self._delete_chunk, [experiment_id]))
            except DatadogHTTPError as error:
                if error.status not in ALREADY_GONE_STATUSES:
                    raise
                gone.append(experiment_id)
        return gone

    def _delete_chunk(self, chunk: list[str], keys: DatadogKeys, timeout: float | None) -> None:
        self._datadog.delete_experiments(keys, chunk, read_timeout=timeout)

    def _call(self, attempt: Attempt, call: DatadogCall[T]) -> T:
        """One Datadog call; when its rate limit resets soon, wait for it here rather than in the queue.

        Returning a throttled message to the queue costs it a receive (maxReceiveCount) and leaves the
        window idle until it comes back; a short wait in the invocation does neither.
        """
        waited = 0.0
        while True:
            try:
                return self._call_once(attempt, call)
            except DatadogHTTPError as error:
                wait = error.rate_limit.reset_seconds if error.status == 429 else None
                if wait is None or waited + wait > self._max_wait or not attempt.has_time(wait):
                    raise
            pause = wait + random.uniform(0, 0.05)  # noqa: S311 (jitter, not crypto)
            time.sleep(pause)
            waited += pause

    def _call_once(self, attempt: Attempt, call: DatadogCall[T]) -> T:
        """One Datadog call: only with time left, its answer awaited no later than the deadline allows, and
        with one refetch of the keys on 401/403."""
        if not attempt.has_time(0):
            raise OutOfTimeError("too little Lambda time left to start a Datadog call")
        keys = self._keys.current()
        try:
            return call(keys, attempt.read_timeout())
        except DatadogHTTPError as refused:
            if refused.status not in AUTH_STATUSES:
                raise
            logger.warning("Datadog refused the keys; refetching the secret once", extra={"status": refused.status})
        fresh = self._keys.refresh(keys)
        if not attempt.has_time(0):
            raise OutOfTimeError("too little Lambda time left to retry the Datadog call with fresh keys")
        try:
            return call(fresh, attempt.read_timeout())
        except DatadogHTTPError as error:
            if error.status in AUTH_STATUSES:
                raise AuthRejectedError(error.status, error.detail) from None
            raise


def ids_digest(ids: list[str]) -> str:
    """A short fingerprint of a set of ids, to tell two results apart without storing the ids."""
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()
