"""clone_dataset's contract model."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from llmobs_actions.contract.base import (
    DATASET_FIELDS,
    NAME_PATTERN,
    PRINTABLE_PATTERN,
    ActionBase,
    InProject,
    ResourceName,
    SafeId,
    Timed,
    UnresolvedNameError,
    check_exactly_one,
    exactly_one,
)
from llmobs_actions.templates import TemplateError, placeholders


class CloneDataset(ActionBase, Timed, InProject):
    """Copy a dataset's current records into a new dataset of the same project."""

    model_config = ConfigDict(
        title="clone_dataset",
        json_schema_extra={"allOf": [exactly_one(["project_id", "project_name"]), exactly_one(DATASET_FIELDS)]},
    )

    action: Literal["clone_dataset"]
    dataset_id: SafeId | None = Field(default=None, description="The source dataset. Give this or dataset_name.")
    dataset_name: ResourceName | None = Field(
        default=None, description="The source dataset's exact name in the project, instead of dataset_id."
    )
    name: str = Field(
        min_length=1,
        max_length=200,
        pattern=NAME_PATTERN,
        description=(
            "Name of the new dataset; may use {date}, {datetime}, {event_time:%Y-%m-%d} (any strftime format) "
            "and {source_name}. Times are the event's (EventBridge/Scheduler time, else when SQS received the "
            "message), in UTC. Literal braces are written {{ and }}."
        ),
    )
    description: str | None = Field(default=None, max_length=2000, pattern=PRINTABLE_PATTERN)

    @field_validator("name", "description")
    @classmethod
    def _known_placeholders(cls, text: str | None) -> str | None:
        if text is not None:
            try:
                placeholders(text)
            except TemplateError as error:
                raise ValueError(str(error)) from None
        return text

    @model_validator(mode="after")
    def _one_dataset(self) -> CloneDataset:
        check_exactly_one(self, "dataset_id", "dataset_name")
        return self

    @property
    def dataset(self) -> str:
        """The source dataset's id: given, or resolved from dataset_name."""
        if self.dataset_id is None:
            raise UnresolvedNameError(f"dataset_name {self.dataset_name!r} was never resolved")
        return self.dataset_id

    @property
    def target(self) -> str:
        return f"{self.project_id or self.project_name}/{self.dataset_id or self.dataset_name}"
