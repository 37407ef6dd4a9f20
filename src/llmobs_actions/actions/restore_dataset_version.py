"""restore_dataset_version: roll a dataset back in place to one of its versions (Datadog keeps a previous
version 90 days after its last use, the current one 3 years)."""

from __future__ import annotations

from llmobs_actions.actions.base import Action, Tools
from llmobs_actions.attempts import ActionResult, Attempt
from llmobs_actions.contract import RestoreDatasetVersion
from llmobs_actions.observability import logger


class RestoreDatasetVersionAction(Action):
    name = "restore_dataset_version"
    model = RestoreDatasetVersion
    first_operation = "restore_dataset_version"

    def run(self, action: RestoreDatasetVersion, attempt: Attempt, tools: Tools) -> ActionResult:
        where = {"project_id": action.project, "dataset_id": action.dataset, "version": action.version}
        if action.dry_run:
            logger.info("dry run: would restore a dataset version", extra=where)
            return ActionResult(
                f"dry run: would restore {action.dataset} to version {action.version}", {"dry_run": True} | where
            )
        tools.calls.call(
            attempt,
            lambda keys, timeout: tools.datadog.restore_dataset_version(
                keys, action.project, action.dataset, action.version, read_timeout=timeout
            ),
        )
        logger.info("dataset version restored", extra=where)
        restored: dict[str, object] = {"restored_version": action.version}
        return ActionResult(f"restored {action.dataset} to version {action.version}", restored)
