"""clone_dataset: copy a dataset's current records into a new dataset of the same project, named by a template."""

from __future__ import annotations

from datetime import UTC, datetime

from llmobs_actions.actions.adoption import earlier_clone
from llmobs_actions.actions.base import Action, Tools
from llmobs_actions.attempts import ActionResult, Attempt, Intent
from llmobs_actions.contract import CloneDataset
from llmobs_actions.datadog import DatadogHTTPError, RateLimit
from llmobs_actions.observability import logger
from llmobs_actions.templates import render


class CloneDatasetAction(Action):
    name = "clone_dataset"
    model = CloneDataset
    first_operation = "clone_dataset"

    def prepare(self, action: CloneDataset, attempt: Attempt, tools: Tools) -> CloneDataset:
        """Its name templates filled: the same for every delivery of one request, since they read its time."""
        moment = attempt.event_time or datetime.now(UTC)

        def source_name() -> str:
            found = tools.calls.call(
                attempt,
                lambda keys, timeout: tools.datadog.dataset_name(
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

    def intent(self, action: CloneDataset) -> Intent:
        return Intent(action.project, action.name)

    def run(self, action: CloneDataset, attempt: Attempt, tools: Tools) -> ActionResult:
        if action.dry_run:
            logger.info(
                "dry run: would clone dataset",
                extra={"project_id": action.project, "dataset_id": action.dataset, "new_name": action.name},
            )
            return ActionResult(
                f"dry run: would clone {action.dataset_id} as {action.name!r}", {"dry_run": True, "name": action.name}
            )
        adopted = earlier_clone(attempt, tools)
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
        cloned = tools.calls.call(
            attempt,
            lambda keys, timeout: tools.datadog.clone_dataset(
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
