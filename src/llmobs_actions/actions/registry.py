"""Which module does which action: one line per action. (contract.ACTION_MODELS lists their contract models.)"""

from __future__ import annotations

from llmobs_actions.actions.backup_datasets import BackupDatasetsAction
from llmobs_actions.actions.base import Action
from llmobs_actions.actions.clone_dataset import CloneDatasetAction
from llmobs_actions.actions.delete_datasets import DeleteDatasetsAction
from llmobs_actions.actions.delete_experiments import DeleteExperimentsAction
from llmobs_actions.actions.export_dataset import ExportDatasetAction
from llmobs_actions.actions.import_dataset import ImportDatasetAction
from llmobs_actions.actions.prune_datasets import PruneDatasetsAction
from llmobs_actions.actions.prune_experiments import PruneExperimentsAction
from llmobs_actions.actions.restore_dataset_version import RestoreDatasetVersionAction

ACTIONS: dict[str, Action] = {
    action.name: action
    for action in (
        CloneDatasetAction(),
        DeleteExperimentsAction(),
        PruneExperimentsAction(),
        DeleteDatasetsAction(),
        PruneDatasetsAction(),
        RestoreDatasetVersionAction(),
        ExportDatasetAction(),
        BackupDatasetsAction(),
        ImportDatasetAction(),
    )
}
