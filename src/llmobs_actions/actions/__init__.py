"""The actions: one module each, behind one small protocol (base.py), found by name in the registry; the
runner is what the rest of the function sees of them."""

from __future__ import annotations

from collections.abc import Mapping

from llmobs_actions.actions.base import DatadogApi, Tools
from llmobs_actions.actions.calls import Calls, KeySource
from llmobs_actions.actions.deletion import ids_digest
from llmobs_actions.actions.registry import ACTIONS
from llmobs_actions.actions.resolution import resolve
from llmobs_actions.actions.selection import is_protected
from llmobs_actions.attempts import ActionResult, Attempt, Intent
from llmobs_actions.backups import Bucket
from llmobs_actions.contract import AnyAction
from llmobs_actions.settings import EXPERIMENT_IDS_CEILING

__all__ = ["ActionRunner", "ids_digest", "is_protected"]


class ActionRunner:
    """Names resolved, the action prepared, done, and reported, each by the action's own module."""

    def __init__(
        self,
        datadog: DatadogApi,
        keys: KeySource,
        delete_chunk_size: int,
        max_throttle_wait_seconds: float = 0,
        max_experiment_ids: int = EXPERIMENT_IDS_CEILING,
        protect_metadata_key: str = "keep",
        bucket: Bucket | None = None,
    ) -> None:
        calls = Calls(keys, max_throttle_wait_seconds)
        self._tools = Tools(datadog, calls, delete_chunk_size, max_experiment_ids, protect_metadata_key, bucket)

    def throttled_for(self, action: AnyAction) -> float | None:
        """Seconds before Datadog takes the action's first call, when that call's rate limit is used up."""
        return self._tools.datadog.throttled_for(ACTIONS[action.action].first_operation)

    def resolve(self, action: AnyAction, attempt: Attempt) -> tuple[AnyAction, dict[str, str]]:
        return resolve(action, attempt, self._tools)

    def prepare(self, action: AnyAction, attempt: Attempt) -> AnyAction:
        prepared: AnyAction = ACTIONS[action.action].prepare(action, attempt, self._tools)
        return prepared

    def intent(self, action: AnyAction) -> Intent:
        return ACTIONS[action.action].intent(action)

    def run(self, action: AnyAction, attempt: Attempt) -> ActionResult:
        """Do a prepared action, settling first whatever the earlier attempts under its key may have done."""
        return ACTIONS[action.action].run(action, attempt, self._tools)

    def metrics(self, action_name: str | None, details: Mapping[str, object]) -> dict[str, float]:
        """What the action reports of a result done now, beyond its success."""
        action = ACTIONS.get(action_name or "")
        return action.metrics(details) if action is not None else {}
