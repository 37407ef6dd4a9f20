"""The backup actions' contract models: export_dataset, backup_datasets, import_dataset."""

from __future__ import annotations

import re
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

# s3://bucket/key/manifest.json: a bucket name as S3 allows it, a key of printable characters.
S3_MANIFEST_PATTERN = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^\x00-\x1f\x7f]{1,900}manifest\.json$"


class ExportDataset(ActionBase, InProject):
    """Write one version of a dataset (default: its current one) to the backup bucket: its records as gzipped
    JSON Lines and a manifest beside them."""

    model_config = ConfigDict(
        title="export_dataset",
        json_schema_extra={"allOf": [exactly_one(["project_id", "project_name"]), exactly_one(DATASET_FIELDS)]},
    )

    action: Literal["export_dataset"]
    dataset_id: SafeId | None = Field(default=None, description="The dataset. Give this or dataset_name.")
    dataset_name: ResourceName | None = Field(
        default=None, description="The dataset's exact name in the project, instead of dataset_id."
    )
    version: int | None = Field(
        default=None, ge=0, le=2_147_483_647, description="The version to export; default the current one."
    )

    @model_validator(mode="after")
    def _one_dataset(self) -> ExportDataset:
        check_exactly_one(self, "dataset_id", "dataset_name")
        return self

    @property
    def dataset(self) -> str:
        if self.dataset_id is None:
            raise UnresolvedNameError(f"dataset_name {self.dataset_name!r} was never resolved")
        return self.dataset_id


class BackupDatasets(ActionBase, Timed, InProject):
    """Export every version of a project's datasets that the bucket does not hold yet, the soonest to expire
    first (a previous version expires 90 days after its last use)."""

    model_config = ConfigDict(title="backup_datasets", json_schema_extra=exactly_one(["project_id", "project_name"]))

    action: Literal["backup_datasets"]
    name_prefix: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=PRINTABLE_PATTERN,
        description="Only datasets whose name starts so.",
    )


class ImportDataset(ActionBase, Timed, InProject):
    """Make a new dataset in a project from an export's records (its digest and count checked first)."""

    model_config = ConfigDict(title="import_dataset", json_schema_extra=exactly_one(["project_id", "project_name"]))

    action: Literal["import_dataset"]
    source_uri: str = Field(
        max_length=1000,
        pattern=S3_MANIFEST_PATTERN,
        description="The s3:// URI of an export's manifest.json.",
    )
    name: str = Field(
        min_length=1,
        max_length=200,
        pattern=NAME_PATTERN,
        description="Name of the new dataset; the templates of clone_dataset's name ({date}, {event_time:...}).",
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
            if "{source_name}" in text:
                raise ValueError("{source_name} is clone_dataset's: an import names its source by its manifest")
        return text

    @property
    def bucket_and_key(self) -> tuple[str, str]:
        bucket, key = re.sub(r"^s3://", "", self.source_uri).split("/", 1)
        return bucket, key
