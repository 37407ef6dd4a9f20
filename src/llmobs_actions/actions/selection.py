"""Prunes: what a selector matches, what of it is spared (protected, in use, the newest), and deleting the rest
within the caps, as both prune_experiments and prune_datasets do."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic

from llmobs_actions.actions.base import Tools
from llmobs_actions.actions.calls import L
from llmobs_actions.actions.deletion import LOGGED_IDS, Deletion, delete, ids_digest
from llmobs_actions.attempts import ActionResult, Attempt
from llmobs_actions.contract import PruneDatasets, PruneExperiments, is_safe_id
from llmobs_actions.failures import PruneRefusedError
from llmobs_actions.messages import parse_timestamp
from llmobs_actions.observability import logger

# A result names at most this many of what a prune deletes, each name cut to this length: a result event stays
# far below EventBridge's 256 KB whatever the names, and a person reads twenty lines, not a thousand.
LISTED_IN_RESULT = 20
LISTED_NAME_CHARS = 200


def is_protected(metadata: Mapping[str, object], key: str) -> bool:
    """The protection marker: `key` set to true (or to the text "true", as a UI may save it)."""
    value = metadata.get(key)
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


@dataclass
class Selection(Generic[L]):
    """What a prune's selector matched, and what of it is spared, each under the first reason that applies."""

    dated: list[tuple[datetime, L]]  # newest first, by the parsed time (offsets and precisions differ)
    undated: list[L]
    matching: int
    unsafe_ids: int
    spared: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, listed: list[L], action: PruneExperiments | PruneDatasets, attempt: Attempt, key: str) -> Selection[L]:
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
        spared = Counter({"newest": 0, "protected": protected, "unknown_age": 0})
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

    def doomed(self, ranked: bool) -> list[L]:
        """What is left to delete; with a ranking, an undated item cannot be ranked, so it stays (spared as of
        unknown age)."""
        if ranked:
            self.spared["unknown_age"] += len(self.undated)
            self.undated = []
        return [item for _, item in self.dated] + self.undated


def prune_selected(
    selection: Selection[Any],
    ranked: bool,
    action: PruneExperiments | PruneDatasets,
    deletion: Callable[[list[str]], Deletion],
    attempt: Attempt,
    tools: Tools,
) -> ActionResult:
    """Delete what the selection left; an item of unknown age is selected by name alone, never ranked."""
    doomed_items = selection.doomed(ranked)
    doomed = [item.id for item in doomed_items]
    what = deletion(doomed)
    # matching = to_delete + every reason's spared count: the summary adds up
    summary: dict[str, object] = {
        "matching": selection.matching,
        "to_delete": len(doomed),
        "spared": dict(selection.spared),
        "skipped_unsafe_ids": selection.unsafe_ids,
        "dry_run": action.dry_run,
        # what it deletes (or would), by name: the first LISTED_IN_RESULT, bounded, and how many more
        "to_delete_listed": [
            {"id": item.id, "name": item.name[:LISTED_NAME_CHARS]} for item in doomed_items[:LISTED_IN_RESULT]
        ],
        "to_delete_not_listed": max(0, len(doomed) - LISTED_IN_RESULT),
    }
    _refuse_past_the_cap(len(doomed), action.max_deletions, what.kind, tools.max_ids)
    log_ids = {f"{what.kind}_ids": doomed[:LOGGED_IDS], f"{what.kind}_ids_listed": min(len(doomed), LOGGED_IDS)}
    if action.dry_run or not doomed:
        logger.info("prune summary", extra=_loggable(summary) | log_ids | {"deleted": 0})
        return ActionResult(
            f"would delete {len(doomed)} {what.kind}(s)" if action.dry_run else "nothing to prune",
            summary | {f"{what.kind}_ids_sha256": ids_digest(doomed)},
        )
    deleted = delete(what, False, attempt, tools)
    logger.info("prune summary", extra=_loggable(summary) | log_ids | {"deleted": deleted.details.get("deleted")})
    return ActionResult(f"pruned {len(doomed)} {what.kind}(s)", summary | deleted.details)


def _loggable(summary: dict[str, object]) -> dict[str, object]:
    """The summary without the names: the log line lists the ids already, a hundred of them."""
    return {key: value for key, value in summary.items() if key != "to_delete_listed"}


def _refuse_past_the_cap(count: int, max_deletions: int, kind: str, max_ids: int) -> None:
    if count > max_deletions:
        raise PruneRefusedError(
            f"the selector matches {count} {kind}s to delete, more than max_deletions "
            f"({max_deletions}); nothing was deleted"
        )
    if count > max_ids:
        raise PruneRefusedError(
            f"the selector matches {count} {kind}s to delete, more than this deployment deletes "
            f"for one message (MAX_EXPERIMENT_IDS {max_ids}); nothing was deleted"
        )
