"""delete_experiments: soft-delete experiments by id."""

from __future__ import annotations

from llmobs_actions.actions.base import Action, Tools
from llmobs_actions.actions.deletion import Deletion, delete
from llmobs_actions.attempts import ActionResult, Attempt
from llmobs_actions.contract import DeleteExperiments


class DeleteExperimentsAction(Action):
    name = "delete_experiments"
    model = DeleteExperiments
    first_operation = "delete_experiments"

    def run(self, action: DeleteExperiments, attempt: Attempt, tools: Tools) -> ActionResult:
        return delete(Deletion.of_experiments(action.experiment_ids), action.dry_run, attempt, tools)
