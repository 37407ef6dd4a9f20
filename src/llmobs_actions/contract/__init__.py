"""The message contract (version 1): the actions producers may send, as pydantic models and JSON Schema.

One model per action (clone.py, deletes.py, prunes.py, ...), on the shared fields of base.py; ACTION_MODELS
and AnyAction list them. `python -m llmobs_actions.contract` prints the published schema."""

from __future__ import annotations

from typing import Annotated, Any, get_args

from pydantic import Field, TypeAdapter, ValidationError

from llmobs_actions.contract.backups import BackupDatasets, ExportDataset, ImportDataset
from llmobs_actions.contract.base import (
    CONTRACT_VERSION,
    EVENT_TIME_PATTERN,
    SAFE_ID_PATTERN,
    InProject,
    UnresolvedNameError,
    is_safe_id,
)
from llmobs_actions.contract.clone import CloneDataset
from llmobs_actions.contract.deletes import DeleteDatasets, DeleteExperiments
from llmobs_actions.contract.prunes import PruneDatasets, PruneExperiments
from llmobs_actions.contract.restore import RestoreDatasetVersion
from llmobs_actions.settings import EXPERIMENT_IDS_CEILING

__all__ = [
    "ACTION_MODELS",
    "ACTION_NAMES",
    "CONTRACT_VERSION",
    "EVENT_TIME_PATTERN",
    "SAFE_ID_PATTERN",
    "AnyAction",
    "BackupDatasets",
    "CloneDataset",
    "DeleteDatasets",
    "DeleteExperiments",
    "ExportDataset",
    "ImportDataset",
    "InvalidAction",
    "PruneDatasets",
    "PruneExperiments",
    "RestoreDatasetVersion",
    "UnresolvedNameError",
    "action_json_schema",
    "describe_validation_error",
    "ensure_resolved",
    "is_safe_id",
    "parse_action",
]

# Every action of the contract: one line each (actions/registry.py names the module that does it).
ACTION_MODELS = (
    CloneDataset,
    DeleteExperiments,
    PruneExperiments,
    DeleteDatasets,
    PruneDatasets,
    RestoreDatasetVersion,
    ExportDataset,
    BackupDatasets,
    ImportDataset,
)
AnyAction = (
    CloneDataset
    | DeleteExperiments
    | PruneExperiments
    | DeleteDatasets
    | PruneDatasets
    | RestoreDatasetVersion
    | ExportDataset
    | BackupDatasets
    | ImportDataset
)
ACTION_NAMES: tuple[str, ...] = tuple(get_args(model.model_fields["action"].annotation)[0] for model in ACTION_MODELS)
Action = Annotated[AnyAction, Field(discriminator="action")]
_ACTION_ADAPTER: TypeAdapter[AnyAction] = TypeAdapter(Action)


def ensure_resolved(action: AnyAction) -> None:
    """Raises UnresolvedNameError unless every name the action was given has its id alongside."""
    if isinstance(action, InProject):
        _ = action.project
    if isinstance(action, CloneDataset | PruneExperiments | RestoreDatasetVersion | ExportDataset):
        _ = action.dataset


class InvalidAction(Exception):
    """The payload does not satisfy the contract; retrying cannot help."""


def parse_action(payload: object, *, max_experiment_ids: int = EXPERIMENT_IDS_CEILING) -> AnyAction:
    try:
        return _ACTION_ADAPTER.validate_python(payload, context={"max_experiment_ids": max_experiment_ids})
    except ValidationError as error:
        raise InvalidAction(describe_validation_error(error)) from None


def describe_validation_error(error: ValidationError, limit: int = 5) -> str:
    """One readable line per problem, never echoing the input (it may be huge or hostile)."""
    issues = error.errors(include_url=False, include_input=False, include_context=False)
    lines = [f"{'.'.join(str(part) for part in issue['loc']) or 'message'}: {issue['msg']}" for issue in issues[:limit]]
    if len(issues) > limit:
        lines.append(f"... and {len(issues) - limit} more")
    return "; ".join(lines)


def action_json_schema() -> dict[str, Any]:
    schema = _ACTION_ADAPTER.json_schema()
    # `discriminator` is OpenAPI's keyword, not JSON Schema's: strict validators (Ajv) refuse it, and the
    # `action` const of each branch already makes the oneOf pick exactly one.
    schema.pop("discriminator", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://github.com/llmobs-actions/llmobs-actions/schemas/action.v{CONTRACT_VERSION}.schema.json",
        "title": f"llmobs-actions message contract v{CONTRACT_VERSION}",
        "description": ("The body of an SQS message (or the detail of an EventBridge event) sent to llmobs-actions."),
        **schema,
    }
