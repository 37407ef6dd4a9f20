"""The contract models of prune_experiments and prune_datasets, and what both share."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from llmobs_actions.contract.base import (
    DATASET_FIELDS,
    PRINTABLE_PATTERN,
    ActionBase,
    InProject,
    ResourceName,
    SafeId,
    Timed,
    UnresolvedNameError,
    check_exactly_one,
    exactly_one,
    given,
)
from llmobs_actions.settings import EXPERIMENT_IDS_CEILING


class Prune(ActionBase, Timed, InProject):
    """What both prunes share: a project, the selectors, the cap."""

    older_than_days: int | None = Field(default=None, ge=0, le=3650, description="Created more than N days ago.")
    name_prefix: str | None = Field(default=None, min_length=1, max_length=200, pattern=PRINTABLE_PATTERN)
    keep_newest: int = Field(
        default=0, ge=0, le=EXPERIMENT_IDS_CEILING, description="Of those that match, keep the newest K."
    )
    max_deletions: int = Field(
        default=100,
        ge=1,
        le=EXPERIMENT_IDS_CEILING,
        description="Refuse (to the DLQ) rather than delete more than this.",
    )


class PruneExperiments(Prune):
    """Delete the experiments of a project (or of one of its datasets) that match a selector.

    An experiment whose metadata holds the protection marker ({"keep": true}) is never pruned.
    """

    model_config = ConfigDict(
        title="prune_experiments",
        json_schema_extra={
            "allOf": [
                exactly_one(["project_id", "project_name"]),
                {"not": given(*DATASET_FIELDS)},
                {
                    "anyOf": [
                        given("older_than_days", kind="integer"),
                        given("name_prefix"),
                        {"required": ["keep_newest"], "properties": {"keep_newest": {"type": "integer", "minimum": 1}}},
                        given("keep_newest_per_name", kind="integer"),
                    ]
                },
            ]
        },
    )

    action: Literal["prune_experiments"]
    dataset_id: SafeId | None = Field(default=None, description="Only experiments run on this dataset.")
    dataset_name: ResourceName | None = Field(
        default=None, description="Only experiments run on the dataset of this exact name, instead of dataset_id."
    )
    keep_newest_per_name: int | None = Field(
        default=None, ge=1, le=EXPERIMENT_IDS_CEILING, description="Of each experiment name, keep the newest N runs."
    )

    @model_validator(mode="after")
    def _has_a_selector(self) -> PruneExperiments:
        check_exactly_one(self, "dataset_id", "dataset_name", optional=True)
        selectors = (self.older_than_days, self.name_prefix, self.keep_newest or None, self.keep_newest_per_name)
        if all(selector is None for selector in selectors):
            raise ValueError("give at least one of older_than_days, name_prefix, keep_newest, keep_newest_per_name")
        return self

    @property
    def dataset(self) -> str | None:
        """The dataset the experiments must have run on, if any: given, or resolved from dataset_name."""
        if self.dataset_id is None and self.dataset_name is not None:
            raise UnresolvedNameError(f"dataset_name {self.dataset_name!r} was never resolved")
        return self.dataset_id

    @property
    def target(self) -> str:
        return f"{self.project_id or self.project_name}/{self.dataset_id or self.dataset_name or '*'}"


class PruneDatasets(Prune):
    """Delete the datasets of a project that match a selector: old snapshots, typically.

    Never deleted: a dataset whose metadata holds the protection marker ({"keep": true}), and one a live
    experiment of the project uses (unless include_datasets_in_use).
    """

    model_config = ConfigDict(
        title="prune_datasets",
        json_schema_extra={
            "allOf": [
                exactly_one(["project_id", "project_name"]),
                {"anyOf": [given("older_than_days", kind="integer"), given("name_prefix")]},
            ]
        },
    )

    action: Literal["prune_datasets"]
    include_datasets_in_use: bool = Field(
        default=False, description="Also delete datasets that live experiments of the project use."
    )

    @model_validator(mode="after")
    def _has_a_selector(self) -> PruneDatasets:
        if self.older_than_days is None and self.name_prefix is None:
            raise ValueError("give older_than_days or name_prefix (or both)")
        return self

    @property
    def target(self) -> str:
        return f"{self.project_id or self.project_name}/*"
