"""The contract models of delete_experiments and delete_datasets."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from llmobs_actions.contract.base import (
    ActionBase,
    InProject,
    SafeId,
    distinct_ids,
    exactly_one,
)
from llmobs_actions.settings import EXPERIMENT_IDS_CEILING


class DeleteExperiments(ActionBase):
    """Soft-delete experiments by id."""

    model_config = ConfigDict(title="delete_experiments")

    action: Literal["delete_experiments"]
    experiment_ids: list[SafeId] = Field(
        min_length=1,
        max_length=EXPERIMENT_IDS_CEILING,
        json_schema_extra={"uniqueItems": True},
        description=(
            f"1 to {EXPERIMENT_IDS_CEILING} distinct ids; a deployment may set a lower limit (MAX_EXPERIMENT_IDS)."
        ),
    )

    @field_validator("experiment_ids")
    @classmethod
    def _distinct_and_within_limit(cls, ids: list[str], info: ValidationInfo) -> list[str]:
        return distinct_ids(ids, info, "experiment")

    @property
    def target(self) -> str:
        return ",".join(self.experiment_ids)


class DeleteDatasets(ActionBase, InProject):
    """Soft-delete datasets of a project by id, protected or not: an explicit id is an explicit decision."""

    model_config = ConfigDict(
        title="delete_datasets", json_schema_extra={"allOf": [exactly_one(["project_id", "project_name"])]}
    )

    action: Literal["delete_datasets"]
    dataset_ids: list[SafeId] = Field(
        min_length=1,
        max_length=EXPERIMENT_IDS_CEILING,
        json_schema_extra={"uniqueItems": True},
        description=(
            f"1 to {EXPERIMENT_IDS_CEILING} distinct ids; a deployment may set a lower limit (MAX_EXPERIMENT_IDS)."
        ),
    )

    @field_validator("dataset_ids")
    @classmethod
    def _distinct_and_within_limit(cls, ids: list[str], info: ValidationInfo) -> list[str]:
        return distinct_ids(ids, info, "dataset")

    @property
    def target(self) -> str:
        return f"{self.project_id or self.project_name}/{','.join(self.dataset_ids)}"
