"""The actions themselves: clone a dataset, delete experiments, each against a Datadog API it is given."""

from __future__ import annotations

import hashlib
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Generic, Protocol, TypeGuard, TypeVar

from llmobs_actions.attempts import ActionResult, Attempt, EarlierAttempt, Intent
from llmobs_actions.aws_clients import OutOfTimeError
from llmobs_actions.contract import (
    AnyAction,
    CloneDataset,
    DeleteDatasets,
    DeleteExperiments,
    PruneDatasets,
    PruneExperiments,
    is_safe_id,
)
from llmobs_actions.datadog import (
    MAX_PAGES,
    ClonedDataset,
    DatadogHTTPError,
    DatadogKeys,
    DatasetSummary,
    ExperimentSummary,
    ProjectSummary,
    RateLimit,
)
from llmobs_actions.failures import (
    AUTH_STATUSES,
    AuthRejectedError,
    NameResolutionError,
    PruneRefusedError,
)
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
    "delete_datasets": "delete_datasets",
    "prune_datasets": "list_datasets",
}
# How Datadog may answer a delete of an experiment or dataset that is already (soft-)deleted: its spec
# documents only 204, but a retry must not fail whichever way it answers.
ALREADY_GONE_STATUSES = frozenset({400, 404})
# Clocks of Lambda and Datadog disagree a little: a dataset created up to this much outside an attempt's
# window may still be the one it made.
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
    def delete_datasets(
        self, keys: DatadogKeys, project_id: str, dataset_ids: list[str], *, read_timeout: float | None = None
    ) -> None: ...
    def list_datasets(
        self,
        keys: DatadogKeys,
        project_id: str,
        cursor: str | None,
        limit: int = 100,
        *,
        name: str | None = None,
        read_timeout: float | None = None,
    ) -> tuple[list[DatasetSummary], str | None]: ...
    def find_projects_by_name(
        self, keys: DatadogKeys, name: str, *, read_timeout: float | None = None
    ) -> list[ProjectSummary]: ...
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


class ActionRunner:
    def __init__(
        self,
        datadog: DatadogApi,
        keys: KeySource,
        delete_chunk_size: int,
        max_throttle_wait_seconds: float = 0,
        max_experiment_ids: int = EXPERIMENT_IDS_CEILING,
        protect_metadata_key: str = "keep",
    ) -> None:
        self._datadog = datadog
        self._keys = keys
        self._chunk = delete_chunk_size
        self._max_wait = max_throttle_wait_seconds
        self._max_ids = max_experiment_ids  # the most ids one message may delete, prunes included
        self._protect_key = protect_metadata_key

    def throttled_for(self, action: AnyAction) -> float | None:
        """Seconds before Datadog takes the action's first call, when that call's rate limit is used up."""
        return self._datadog.throttled_for(FIRST_OPERATION[action.action])

    def resolve(self, action: AnyAction, attempt: Attempt) -> tuple[AnyAction, dict[str, str]]:
        """The action with the ids its project_name and dataset_name stand for, and those ids.

        Exact names only (filter[name] narrows the listing; the name decides). A name that matches no
        live project or dataset, or several, cannot say what is meant: NameResolutionError (rejected).
        """
        resolved: dict[str, str] = {}
        project_name = getattr(action, "project_name", None)
        if project_name is not None and getattr(action, "project_id", None) is None:
            projects = self._call(
                attempt,
                lambda keys, timeout: self._datadog.find_projects_by_name(keys, project_name, read_timeout=timeout),
            )
            resolved["project_id"] = _the_one("project", project_name, [p.id for p in projects], "")
        dataset_name = getattr(action, "dataset_name", None)
        if dataset_name is not None and getattr(action, "dataset_id", None) is None:
            project_id = resolved.get("project_id") or str(getattr(action, "project_id", ""))
            datasets = self._call(
                attempt,
                lambda keys, timeout: self._datadog.find_datasets_by_name(
                    keys, project_id, dataset_name, read_timeout=timeout
                ),
            )
            resolved["dataset_id"] = _the_one("dataset", dataset_name, [d.id for d in datasets], project_id)
        if not resolved:
            return action, resolved
        logger.info("names resolved", extra={"resolved": resolved})
        return action.model_copy(update=resolved), resolved

    def prepare(self, action: AnyAction, attempt: Attempt) -> AnyAction:
        """The action as this attempt will do it: a clone's name templates filled (the same for every delivery
        of one request, since they read its event time)."""
        return self._with_names_rendered(action, attempt) if isinstance(action, CloneDataset) else action

    @staticmethod
    def intent(action: AnyAction) -> Intent:
        """What a prepared action is about to do, for the key's record: where, and under which name."""
        project = getattr(action, "project_id", None) or ""
        return Intent(project, action.name if isinstance(action, CloneDataset) else None)

    def run(self, action: AnyAction, attempt: Attempt) -> ActionResult:
        """Do a prepared action, settling first whatever the earlier attempts under its key may have done."""
        match action:
            case CloneDataset():
                return self._clone(action, attempt)
            case PruneExperiments():
                return self._prune(action, attempt)
            case PruneDatasets():
                return self._prune_datasets(action, attempt)
            case DeleteDatasets():
                return self._delete(_Deletion.of_datasets(action.project, action.dataset_ids), action.dry_run, attempt)
            case DeleteExperiments():
                return self._delete(_Deletion.of_experiments(action.experiment_ids), action.dry_run, attempt)

    def _clone(self, action: CloneDataset, attempt: Attempt) -> ActionResult:
        if action.dry_run:
            logger.info(
                "dry run: would clone dataset",
                extra={"project_id": action.project, "dataset_id": action.dataset, "new_name": action.name},
            )
            return ActionResult(
                f"dry run: would clone {action.dataset_id} as {action.name!r}", {"dry_run": True, "name": action.name}
            )
        adopted = self._earlier_clone(attempt)
        if adopted is not None:
            logger.info("adopted the dataset an earlier attempt created", extra={"new_dataset_id": adopted.id})
            return ActionResult(
                f"cloned earlier as {adopted.id}",
                {
                    "new_dataset_id": adopted.id,
                    "name": adopted.name,
                    "current_version": adopted.current_version,
                    "adopted": True,
                },
            )
        cloned = self._call(
            attempt,
            lambda keys, timeout: self._datadog.clone_dataset(
                keys, action.project, action.dataset, action.name, action.description, read_timeout=timeout
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
        moment = attempt.event_time or datetime.now(UTC)

        def source_name() -> str:
            found = self._call(
                attempt,
                lambda keys, timeout: self._datadog.dataset_name(
                    keys, action.project, action.dataset, read_timeout=timeout
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

    def _earlier_clone(self, attempt: Attempt) -> DatasetSummary | None:
        """The dataset an earlier attempt under this key made, if one may have: exactly the name it asked for, in
        its project, created while it could have been at work. Only such a dataset can be its; any other of the
        same name is someone else's, and is never adopted."""
        found: list[tuple[datetime, DatasetSummary]] = []
        for earlier in attempt.earlier:
            if not earlier.may_have_acted or earlier.name is None:
                continue
            for candidate in self._call(attempt, partial(self._named_in, earlier.target, earlier.name)):
                created = parse_timestamp(candidate.created_at)
                if _made_during(created, earlier):
                    found.append((created, candidate))
        return min(found, key=lambda pair: pair[0])[1] if found else None

    def _named_in(
        self, project_id: str, name: str, keys: DatadogKeys, read_timeout: float | None
    ) -> list[DatasetSummary]:
        return self._datadog.find_datasets_by_name(keys, project_id, name, read_timeout=read_timeout)

    def _prune(self, action: PruneExperiments, attempt: Attempt) -> ActionResult:
        """Select with the list endpoint (every page), spare what must stay, refuse past the cap, then delete
        like delete_experiments."""
        listed: list[ExperimentSummary] = self._every_page(
            attempt,
            lambda cursor, keys, timeout: self._datadog.list_experiments(
                keys, action.project, action.dataset, cursor, read_timeout=timeout
            ),
        )
        selection = _Selection.of(listed, action, attempt, self._protect_key)
        rules: list[tuple[str, int, Callable[[ExperimentSummary], str] | None]] = [("newest", action.keep_newest, None)]
        if action.keep_newest_per_name is not None:
            selection.spared["newest_per_name"] += 0  # counted even when nothing needs sparing
            rules.append(("newest_per_name", action.keep_newest_per_name, _name_of))
        selection.keep_newest(rules)
        ranked = action.keep_newest > 0 or action.keep_newest_per_name is not None
        return self._prune_selected(selection, ranked, action, _Deletion.of_experiments, attempt)

    def _prune_datasets(self, action: PruneDatasets, attempt: Attempt) -> ActionResult:
        """Like prune_experiments, over the project's datasets; those live experiments use are spared too."""
        listed: list[DatasetSummary] = self._every_page(
            attempt,
            lambda cursor, keys, timeout: self._datadog.list_datasets(
                keys, action.project, cursor, read_timeout=timeout
            ),
        )
        selection = _Selection.of(listed, action, attempt, self._protect_key)
        selection.spared["in_use"] += 0  # counted even when nothing needs sparing
        if selection.candidates() and not action.include_datasets_in_use:
            experiments: list[ExperimentSummary] = self._every_page(
                attempt,
                lambda cursor, keys, timeout: self._datadog.list_experiments(
                    keys, action.project, None, cursor, read_timeout=timeout
                ),
            )
            in_use = {experiment.dataset_id for experiment in experiments}
            selection.spare("in_use", lambda dataset: dataset.id in in_use)
        selection.keep_newest([("newest", action.keep_newest, None)])
        project = action.project
        return self._prune_selected(
            selection, action.keep_newest > 0, action, lambda ids: _Deletion.of_datasets(project, ids), attempt
        )

    def _prune_selected(
        self,
        selection: _Selection[Any],
        ranked: bool,
        action: PruneExperiments | PruneDatasets,
        deletion: Callable[[list[str]], _Deletion],
        attempt: Attempt,
    ) -> ActionResult:
        """Delete what the selection left; an item of unknown age is selected by name alone, never ranked."""
        doomed = selection.doomed(ranked)
        what = deletion(doomed)
        summary: dict[str, object] = {
            "matching": selection.matching,
            "kept_newest": selection.spared["newest"],
            "kept_unknown_age": len(selection.undated) if ranked else 0,
            "spared": dict(selection.spared),
            "skipped_unsafe_ids": selection.unsafe_ids,
            "to_delete": len(doomed),
            "dry_run": action.dry_run,
        }
        self._refuse_past_the_cap(len(doomed), action.max_deletions, what.kind)
        log_ids = {f"{what.kind}_ids": doomed[:LOGGED_IDS], f"{what.kind}_ids_listed": min(len(doomed), LOGGED_IDS)}
        if action.dry_run or not doomed:
            logger.info("prune summary", extra=summary | log_ids | {"deleted": 0})
            return ActionResult(
                f"would delete {len(doomed)} {what.kind}(s)" if action.dry_run else "nothing to prune",
                summary | {f"{what.kind}_ids_sha256": ids_digest(doomed)},
            )
        deleted = self._delete(what, False, attempt)
        logger.info("prune summary", extra=summary | log_ids | {"deleted": deleted.details.get("deleted")})
        return ActionResult(f"pruned {len(doomed)} {what.kind}(s)", summary | deleted.details)

    def _refuse_past_the_cap(self, count: int, max_deletions: int, kind: str) -> None:
        if count > max_deletions:
            raise PruneRefusedError(
                f"the selector matches {count} {kind}s to delete, more than max_deletions "
                f"({max_deletions}); nothing was deleted"
            )
        if count > self._max_ids:
            raise PruneRefusedError(
                f"the selector matches {count} {kind}s to delete, more than this deployment deletes "
                f"for one message (MAX_EXPERIMENT_IDS {self._max_ids}); nothing was deleted"
            )

    def _every_page(
        self, attempt: Attempt, page: Callable[[str | None, DatadogKeys, float | None], tuple[list[L], str | None]]
    ) -> list[L]:
        """Every item of a listing, each once (an item listed again on a later page while the list changed)."""
        seen: set[str] = set()
        items: list[L] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            found, cursor = self._call(attempt, partial(page, cursor))
            for item in found:
                if item.id not in seen:
                    seen.add(item.id)
                    items.append(item)
            if cursor is None:
                return items
        raise DatadogHTTPError("list", 400, f"more than {MAX_PAGES} pages: the listing never ends", RateLimit())

    def _delete(self, what: _Deletion, dry_run: bool, attempt: Attempt) -> ActionResult:
        ids, kind = what.ids, what.kind
        if dry_run:
            logger.info(f"dry run: would delete {kind}s", extra={"count": len(ids), f"{kind}_ids": ids[:LOGGED_IDS]})
            return ActionResult(
                f"dry run: would delete {len(ids)} {kind}(s)",
                {"dry_run": True, "to_delete": len(ids), f"{kind}_ids_sha256": ids_digest(ids)},
            )
        chunks = [ids[start : start + self._chunk] for start in range(0, len(ids), self._chunk)]
        gone: list[str] = []
        for number, chunk in enumerate(chunks, start=1):
            try:
                self._call(attempt, partial(what.delete, self._datadog, chunk))
                attempt.progress.changed = True
            except DatadogHTTPError as error:
                if error.status not in ALREADY_GONE_STATUSES or not attempt.may_have_run_before:
                    raise
                # An earlier try may have deleted some of these, and Datadog may refuse ids it already
                # soft-deleted: delete one by one; an id refused alone is gone already.
                gone += self._delete_one_by_one(what, chunk, attempt)
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

    def _delete_one_by_one(self, what: _Deletion, chunk: list[str], attempt: Attempt) -> list[str]:
        gone = []
        for item_id in chunk:
            try:
                self._call(attempt, partial(what.delete, self._datadog, [item_id]))
            except DatadogHTTPError as error:
                if error.status not in ALREADY_GONE_STATUSES:
                    raise
                gone.append(item_id)
        return gone

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


def _made_during(created: datetime | None, earlier: EarlierAttempt) -> TypeGuard[datetime]:
    """Whether a dataset created then can be the one `earlier` made (clocks of Lambda and Datadog disagree a little)."""
    return created is not None and earlier.started_at - CLOCK_SKEW <= created <= earlier.until + CLOCK_SKEW


def _the_one(kind: str, name: str, ids: list[str], project_id: str) -> str:
    where = f" in project {project_id}" if project_id else ""
    if not ids:
        raise NameResolutionError(f"no {kind} named {name[:200]!r}{where}")
    if len(ids) > 1:
        raise NameResolutionError(
            f"{len(ids)} {kind}s are named {name[:200]!r}{where}; give {kind}_id to say which one is meant"
        )
    return ids[0]


def _name_of(item: _Listed) -> str:
    return item.name


def is_protected(metadata: Mapping[str, object], key: str) -> bool:
    """The protection marker: `key` set to true (or to the text "true", as a UI may save it)."""
    value = metadata.get(key)
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


@dataclass(frozen=True)
class _Deletion:
    """Ids of one kind, and the Datadog call that deletes a chunk of them."""

    kind: str
    ids: list[str]
    delete: Callable[[DatadogApi, list[str], DatadogKeys, float | None], None]

    @classmethod
    def of_experiments(cls, ids: list[str]) -> _Deletion:
        def delete(api: DatadogApi, chunk: list[str], keys: DatadogKeys, timeout: float | None) -> None:
            api.delete_experiments(keys, chunk, read_timeout=timeout)

        return cls("experiment", ids, delete)

    @classmethod
    def of_datasets(cls, project_id: str, ids: list[str]) -> _Deletion:
        def delete(api: DatadogApi, chunk: list[str], keys: DatadogKeys, timeout: float | None) -> None:
            api.delete_datasets(keys, project_id, chunk, read_timeout=timeout)

        return cls("dataset", ids, delete)


class _Listed(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def created_at(self) -> str | None: ...
    @property
    def metadata(self) -> Mapping[str, object]: ...


L = TypeVar("L", bound=_Listed)


@dataclass
class _Selection(Generic[L]):
    """What a prune's selector matched, and what of it is spared, each under the first reason that applies."""

    dated: list[tuple[datetime, L]]  # newest first, by the parsed time (offsets and precisions differ)
    undated: list[L]
    matching: int
    unsafe_ids: int
    spared: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, listed: list[L], action: PruneExperiments | PruneDatasets, attempt: Attempt, key: str) -> _Selection[L]:
        now = attempt.event_time or datetime.now(UTC)
        cutoff = now - timedelta(days=action.older_than_days) if action.older_than_days is not None else None
        dated: list[tuple[datetime, L]] = []
        undated: list[L] = []
        matching = unsafe = protected = 0
        for item in listed:
            if not is_safe_id(item.id):
                unsafe += 1
                logger.warning("skipped an id the contract refuses", extra={"id": item.id[:200]})
                continue
            created = parse_timestamp(item.created_at)
            if action.name_prefix is not None and not item.name.startswith(action.name_prefix):
                continue
            if cutoff is not None and (created is None or created >= cutoff):
                continue  # an item whose age is unknown is never old enough
            matching += 1
            if is_protected(item.metadata, key):
                protected += 1
            elif created is None:
                undated.append(item)
            else:
                dated.append((created, item))
        dated.sort(key=lambda pair: pair[0], reverse=True)
        spared = Counter({"newest": 0, "protected": protected})
        return cls(dated, undated, matching, unsafe, spared)

    def candidates(self) -> list[L]:
        return [item for _, item in self.dated] + self.undated

    def spare(self, reason: str, applies: Callable[[L], bool]) -> None:
        before = len(self.dated) + len(self.undated)
        self.dated = [(when, item) for when, item in self.dated if not applies(item)]
        self.undated = [item for item in self.undated if not applies(item)]
        self.spared[reason] += before - len(self.dated) - len(self.undated)

    def keep_newest(self, rules: list[tuple[str, int, Callable[[L], str] | None]]) -> None:
        """Spare, of what is still to be deleted, the newest `count` of each rule's groups (all as one group when
        the rule has no grouping). Every rule ranks the same items, so keep_newest 1 with keep_newest_per_name 1
        keeps the newest run and the newest run of each name, never an older run in the newest's place; an item
        kept by several rules counts under the first."""
        kept: dict[int, str] = {}
        for reason, count, group in rules:
            seen: Counter[str] = Counter()
            for _, item in self.dated:  # newest first
                grouped = group(item) if group is not None else ""
                if seen[grouped] < count:
                    seen[grouped] += 1
                    kept.setdefault(id(item), reason)
        for reason in kept.values():
            self.spared[reason] += 1
        self.dated = [(when, item) for when, item in self.dated if id(item) not in kept]

    def doomed(self, ranked: bool) -> list[str]:
        """What is left to delete; with a ranking, an undated item cannot be ranked, so it stays."""
        return [item.id for _, item in self.dated] + ([] if ranked else [item.id for item in self.undated])
