"""What every action of the contract shares: ids safe in a URL, names, the fields of how a request was asked
(its key, a dry run, whom to tell), a project named by id or name, a time the request is for; and the helpers
that write "exactly one of" and "present and not null" as JSON Schema every validator reads alike."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from llmobs_actions.settings import EXPERIMENT_IDS_CEILING

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


class Timed(BaseModel):
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


class ActionBase(BaseModel):
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


def given(*names: str, kind: str = "string") -> dict[str, Any]:
    """JSON Schema for "these fields are given": present and not null, as the model validators see it."""
    return {"required": list(names), "properties": {name: {"type": kind} for name in names}}


def exactly_one(names: list[str]) -> dict[str, Any]:
    return {"oneOf": [given(name) for name in names]}


def check_exactly_one(action: BaseModel, first: str, second: str, *, optional: bool = False) -> None:
    given = [name for name in (first, second) if getattr(action, name) is not None]
    if len(given) == 2:
        raise ValueError(f"give {first} or {second}, not both")
    if not given and not optional:
        raise ValueError(f"give {first} or {second}")


class UnresolvedNameError(Exception):
    """An id was asked for while only a name is known: names are resolved before an action runs."""


class InProject(BaseModel):
    """An action on one project, named by its id or by its exact name."""

    project_id: SafeId | None = Field(default=None, description="The project. Give this or project_name.")
    project_name: ResourceName | None = Field(
        default=None,
        description="The project's exact name, instead of project_id: resolved to its id before the action runs.",
    )

    @model_validator(mode="after")
    def _one_project(self) -> InProject:
        check_exactly_one(self, "project_id", "project_name")
        return self

    @property
    def project(self) -> str:
        """The project's id: given, or resolved from project_name."""
        if self.project_id is None:
            raise UnresolvedNameError(f"project_name {self.project_name!r} was never resolved")
        return self.project_id


def distinct_ids(ids: list[str], info: ValidationInfo, kind: str) -> list[str]:
    duplicates = sorted(i for i, n in Counter(ids).items() if n > 1)
    if duplicates:
        raise ValueError(f"duplicate {kind} ids: {', '.join(duplicates[:5])}")
    limit = (info.context or {}).get("max_experiment_ids", EXPERIMENT_IDS_CEILING)
    if len(ids) > limit:
        raise ValueError(f"{len(ids)} {kind} ids is more than this deployment accepts ({limit})")
    return ids
