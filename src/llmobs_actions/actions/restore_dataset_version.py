"""restore_dataset_version: roll a dataset back in place to one of its versions (Datadog keeps a previous
version 90 days after its last use, the current one 3 years)."""

from __future__ import annotations

from llmobs_actions.actions.base import Action, Tools
from llmobs_actions.actions.export_dataset import live_dataset
from llmobs_actions.actions.exports import Exported, export_version
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
        exported = self._export_current(action, attempt, tools) if tools.bucket is not None else None
        tools.calls.call(
            attempt,
            lambda keys, timeout: tools.datadog.restore_dataset_version(
                keys, action.project, action.dataset, action.version, read_timeout=timeout
            ),
        )
        logger.info("dataset version restored", extra=where)
        restored: dict[str, object] = {"restored_version": action.version}
        if exported is not None:  # what was current, kept in the bucket before it was rolled back
            restored |= {"exported_before": exported.manifest_uri, "exported_version": exported.manifest["version"]}
        return ActionResult(f"restored {action.dataset} to version {action.version}", restored)

    def _export_current(self, action: RestoreDatasetVersion, attempt: Attempt, tools: Tools) -> Exported:
        """The version that is current now, to the bucket first: a restore never loses what it replaces."""
        dataset = live_dataset(action.project, action.dataset, attempt, tools)
        current = dataset.current_version or 0
        checkpoint = attempt.checkpoint if attempt.checkpoint and attempt.checkpoint.get("version") == current else None
        return export_version(
            (action.project, ""), (action.dataset, dataset.name), current, current, attempt, tools, checkpoint
        )
