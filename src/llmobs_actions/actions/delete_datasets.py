"""delete_datasets: soft-delete datasets of a project by id, protected or not (an explicit id is a decision)."""

from __future__ import annotations

from llmobs_actions.actions.base import Action, Tools
from llmobs_actions.actions.deletion import Deletion, delete
from llmobs_actions.attempts import ActionResult, Attempt
from llmobs_actions.contract import DeleteDatasets


class DeleteDatasetsAction(Action):
    name = "delete_datasets"
    model = DeleteDatasets
    first_operation = "delete_datasets"

    def run(self, action: DeleteDatasets, attempt: Attempt, tools: Tools) -> ActionResult:
        return delete(Deletion.of_datasets(action.project, action.dataset_ids), action.dry_run, attempt, tools)
