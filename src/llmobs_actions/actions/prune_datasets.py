"""prune_datasets: delete the datasets of a project that match a selector (old snapshots, typically), sparing
protected ones, those a live experiment of the project uses, and the newest."""

from __future__ import annotations

from llmobs_actions.actions.base import Action, Tools
from llmobs_actions.actions.deletion import Deletion
from llmobs_actions.actions.selection import Selection, prune_selected
from llmobs_actions.attempts import ActionResult, Attempt
from llmobs_actions.contract import PruneDatasets
from llmobs_actions.datadog import DatasetSummary, ExperimentSummary


class PruneDatasetsAction(Action):
    name = "prune_datasets"
    model = PruneDatasets
    first_operation = "list_datasets"

    def run(self, action: PruneDatasets, attempt: Attempt, tools: Tools) -> ActionResult:
        listed: list[DatasetSummary] = tools.calls.every_page(
            attempt,
            lambda cursor, keys, timeout: tools.datadog.list_datasets(
                keys, action.project, cursor, read_timeout=timeout
            ),
        )
        selection = Selection.of(listed, action, attempt, tools.protect_key)
        selection.spared["in_use"] += 0  # counted even when nothing needs sparing
        if selection.candidates() and not action.include_datasets_in_use:
            experiments: list[ExperimentSummary] = tools.calls.every_page(
                attempt,
                lambda cursor, keys, timeout: tools.datadog.list_experiments(
                    keys, action.project, None, cursor, read_timeout=timeout
                ),
            )
            in_use = {experiment.dataset_id for experiment in experiments}
            selection.spare("in_use", lambda dataset: dataset.id in in_use)
        selection.keep_newest([("newest", action.keep_newest, None)])
        project = action.project
        return prune_selected(
            selection, action.keep_newest > 0, action, lambda ids: Deletion.of_datasets(project, ids), attempt, tools
        )
