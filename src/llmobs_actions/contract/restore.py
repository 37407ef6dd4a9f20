"""restore_dataset_version's contract model."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from llmobs_actions.contract.base import (
    DATASET_FIELDS,
    ActionBase,
    InProject,
    ResourceName,
    SafeId,
    UnresolvedNameError,
    check_exactly_one,
    exactly_one,
)


class RestoreDatasetVersion(ActionBase, InProject):
    """Roll a dataset back in place: its current version is bumped, and its records become those of `version`."""

    model_config = ConfigDict(
        title="restore_dataset_version",
        json_schema_extra={"allOf": [exactly_one(["project_id", "project_name"]), exactly_one(DATASET_FIELDS)]},
    )

    action: Literal["restore_dataset_version"]
    dataset_id: SafeId | None = Field(default=None, description="The dataset. Give this or dataset_name.")
    dataset_name: ResourceName | None = Field(
        default=None, description="The dataset's exact name in the project, instead of dataset_id."
    )
    version: int = Field(
        ge=0,
        le=2_147_483_647,
        description="The version to bring back: 0 to the dataset's current version (Datadog refuses others).",
    )

    @model_validator(mode="after")
    def _one_dataset(self) -> RestoreDatasetVersion:
        check_exactly_one(self, "dataset_id", "dataset_name")
        return self

    @property
    def dataset(self) -> str:
        """The dataset's id: given, or resolved from dataset_name."""
        if self.dataset_id is None:
            raise UnresolvedNameError(f"dataset_name {self.dataset_name!r} was never resolved")
        return self.dataset_id
