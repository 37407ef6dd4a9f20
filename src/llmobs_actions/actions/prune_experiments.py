"""prune_experiments: delete the experiments of a project (or of one of its datasets) that match a selector,
sparing protected ones, the newest, and the newest of each name."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from llmobs_actions.actions.base import Action, Tools
from llmobs_actions.actions.deletion import Deletion
from llmobs_actions.actions.selection import Selection, prune_selected
from llmobs_actions.attempts import ActionResult, Attempt
from llmobs_actions.contract import PruneExperiments
from llmobs_actions.datadog import ExperimentSummary


class PruneExperimentsAction(Action):
    name = "prune_experiments"
    model = PruneExperiments
    first_operation = "list_experiments"

    def run(self, action: PruneExperiments, attempt: Attempt, tools: Tools) -> ActionResult:
        """Select with the list endpoint (every page), spare what must stay, refuse past the cap, then delete
        like delete_experiments."""
        listed: list[ExperimentSummary] = tools.calls.every_page(
            attempt,
            lambda cursor, keys, timeout: tools.datadog.list_experiments(
                keys, action.project, action.dataset, cursor, read_timeout=timeout
            ),
        )
        selection = Selection.of(listed, action, attempt, tools.protect_key)
        rules: list[tuple[str, int, Callable[[ExperimentSummary], str] | None]] = [("newest", action.keep_newest, None)]
        if action.keep_newest_per_name is not None:
            selection.spared["newest_per_name"] += 0  # counted even when nothing needs sparing
            rules.append(("newest_per_name", action.keep_newest_per_name, _name_of))
        selection.keep_newest(rules)
        ranked = action.keep_newest > 0 or action.keep_newest_per_name is not None
        return prune_selected(selection, ranked, action, Deletion.of_experiments, attempt, tools)

    def metrics(self, details: Mapping[str, object]) -> dict[str, float]:
        return {"ExperimentsPruned": float(str(details.get("deleted", 0)))}


def _name_of(experiment: ExperimentSummary) -> str:
    return experiment.name
