"""The message contract (version 1): the actions producers may send, as pydantic models and JSON Schema."""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from llmobs_actions.settings import EXPERIMENT_IDS_CEILING
from llmobs_actions.templates import TemplateError, placeholders

CONTRACT_VERSION = 1

# Ids go into URL paths. Datadog's ids are UUID-like, so letters, digits, '-' and '_' are all we
# accept: no '/', '.', '%', '?', '#', whitespace or control character can reach a URL.
SAFE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
# Free text goes into JSON bodies, where anything is safe; control characters are still refused
# because a newline in a dataset name is always a mistake upstream.
PRINTABLE_PATTERN = r"^[^\x00-\x1f\x7f]*$"
# ...and a name must also have something besides blanks.
NAME_PATTERN = r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$"

SafeId = Annotated[
    str,
    Field(
        pattern=SAFE_ID_PATTERN,
        description="A Datadog id: 1-128 letters, digits, '-' or '_' (UUIDs qualify).",
    ),
]
_SAFE_ID = re.compile(SAFE_ID_PATTERN)
# An ISO-8601 UTC or offset time, as EventBridge, Scheduler (<aws.scheduler.scheduled-time>) and Datadog write it.
EVENT_TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$"


ResourceName = Annotated[
    str,
    Field(min_length=1, max_length=200, pattern=NAME_PATTERN, description="An exact name, resolved to its id."),
]


def is_safe_id(value: str) -> bool:
    """Whether `value` may go into a URL path as a Datadog id (what the contract accepts)."""
    return _SAFE_ID.match(value) is not None


class _Timed(BaseModel):
    """An action whose result depends on a time: clone names, prune ages."""

    event_time: str | None = Field(
        default=None,
        pattern=EVENT_TIME_PATTERN,
        description=(
            "The time the request is for, e.g. EventBridge Scheduler's <aws.scheduler.scheduled-time>: name "
            "templates and older_than_days read it instead of the delivery's time, so every delivery of one "
            "scheduled run behaves alike."
        ),
    )

    @field_validator("event_time")
    @classmethod
    def _a_real_time(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"{value!r} is not a date and time") from None
        return value


class _ActionBase(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        pattern=PRINTABLE_PATTERN,
        description="Producer-chosen key: two messages with the same key take effect once.",
    )
    dry_run: bool = Field(default=False, description="Validate and log what would be done; change nothing.")
    correlation_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        pattern=PRINTABLE_PATTERN,
        description="Free text the producer sets; the result event and task callback echo it back.",
    )
    task_token: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        pattern=r"^[^\x00-\x1f\x7f]*$",
        description=(
            "A Step Functions task token ($$.Task.Token of a sqs:sendMessage.waitForTaskToken step): the final "
            "outcome is sent back with SendTaskSuccess or SendTaskFailure. Never logged."
        ),
    )


DATASET_FIELDS = ["dataset_id", "dataset_name"]


def _given(*names: str, kind: str = "string") -> dict[str, Any]:
    """JSON Schema for "these fields are given": present and not null, as the model validators see it."""
    return {"required": list(names), "properties": {name: {"type": kind} for name in names}}


def _exactly_one(names: list[str]) -> dict[str, Any]:
    return {"oneOf": [_given(name) for name in names]}


def _check_exactly_one(action: BaseModel, first: str, second: str, *, optional: bool = False) -> None:
    given = [name for name in (first, second) if getattr(action, name) is not None]
    if len(given) == 2:
        raise ValueError(f"give {first} or {second}, not both")
    if not given and not optional:
        raise ValueError(f"give {first} or {second}")


class UnresolvedNameError(Exception):
    """An id was asked for while only a name is known: names are resolved before an action runs."""


class _InProject(BaseModel):
    """An action on one project, named by its id or by its exact name."""

    project_id: SafeId | None = Field(default=None, description="The project. Give this or project_name.")
    project_name: ResourceName | None = Field(
        default=None,
        description="The project's exact name, instead of project_id: resolved to its id before the action runs.",
    )

    @model_validator(mode="after")
    def _one_project(self) -> _InProject:
        _check_exactly_one(self, "project_id", "project_name")
        return self

    @property
    def project(self) -> str:
        """The project's id: given, or resolved from project_name."""
        if self.project_id is None:
            raise UnresolvedNameError(f"project_name {self.project_name!r} was never resolved")
        return self.project_id


class CloneDataset(_ActionBase, _Timed, _InProject):
    """Copy a dataset's current records into a new dataset of the same project."""

    model_config = ConfigDict(
        title="clone_dataset",
        json_schema_extra={"allOf": [_exactly_one(["project_id", "project_name"]), _exactly_one(DATASET_FIELDS)]},
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
        _check_exactly_one(self, "dataset_id", "dataset_name")
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


class DeleteExperiments(_ActionBase):
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
        return _distinct_ids(ids, info, "experiment")

    @property
    def target(self) -> str:
        return ",".join(self.experiment_ids)


class DeleteDatasets(_ActionBase, _InProject):
    """Soft-delete datasets of a project by id, protected or not: an explicit id is an explicit decision."""

    model_config = ConfigDict(
        title="delete_datasets", json_schema_extra={"allOf": [_exactly_one(["project_id", "project_name"])]}
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
        return _distinct_ids(ids, info, "dataset")

    @property
    def target(self) -> str:
        return f"{self.project_id or self.project_name}/{','.join(self.dataset_ids)}"


class _Prune(_ActionBase, _Timed, _InProject):
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


class PruneExperiments(_Prune):
    """Delete the experiments of a project (or of one of its datasets) that match a selector.

    An experiment whose metadata holds the protection marker ({"keep": true}) is never pruned.
    """

    model_config = ConfigDict(
        title="prune_experiments",
        json_schema_extra={
            "allOf": [
                _exactly_one(["project_id", "project_name"]),
                {"not": _given(*DATASET_FIELDS)},
                {
                    "anyOf": [
                        _given("older_than_days", kind="integer"),
                        _given("name_prefix"),
                        {"required": ["keep_newest"], "properties": {"keep_newest": {"type": "integer", "minimum": 1}}},
                        _given("keep_newest_per_name", kind="integer"),
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
        _check_exactly_one(self, "dataset_id", "dataset_name", optional=True)
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


class PruneDatasets(_Prune):
    """Delete the datasets of a project that match a selector: old snapshots, typically.

    Never deleted: a dataset whose metadata holds the protection marker ({"keep": true}), and one a live
    experiment of the project uses (unless include_datasets_in_use).
    """

    model_config = ConfigDict(
        title="prune_datasets",
        json_schema_extra={
            "allOf": [
                _exactly_one(["project_id", "project_name"]),
                {"anyOf": [_given("older_than_days", kind="integer"), _given("name_prefix")]},
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


def _distinct_ids(ids: list[str], info: ValidationInfo, kind: str) -> list[str]:
    duplicates = sorted(i for i, n in Counter(ids).items() if n > 1)
    if duplicates:
        raise ValueError(f"duplicate {kind} ids: {', '.join(duplicates[:5])}")
    limit = (info.context or {}).get("max_experiment_ids", EXPERIMENT_IDS_CEILING)
    if len(ids) > limit:
        raise ValueError(f"{len(ids)} {kind} ids is more than this deployment accepts ({limit})")
    return ids


AnyAction = CloneDataset | DeleteExperiments | PruneExperiments | DeleteDatasets | PruneDatasets
ACTION_NAMES = ("clone_dataset", "delete_experiments", "prune_experiments", "delete_datasets", "prune_datasets")
Action = Annotated[AnyAction, Field(discriminator="action")]
_ACTION_ADAPTER: TypeAdapter[AnyAction] = TypeAdapter(Action)


def ensure_resolved(action: AnyAction) -> None:
    """Raises UnresolvedNameError unless every name the action was given has its id alongside."""
    if isinstance(action, _InProject):
        _ = action.project
    if isinstance(action, CloneDataset | PruneExperiments):
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


if __name__ == "__main__":  # `python -m llmobs_actions.contract > schemas/action.v1.schema.json`
    json.dump(action_json_schema(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
