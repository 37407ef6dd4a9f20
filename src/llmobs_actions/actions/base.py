"""What every action is: a small protocol, and the tools it is given (Datadog's calls, bounded and keyed).

An action is one module of this package with one `Action`: the contract model it takes (`model`), the
Datadog operation it starts with (`first_operation`: its rate limit decides whether it can start now), what
it does (`run`), and what it reports beyond its result (`metrics`). Two hooks have defaults: `prepare` fills
what must be the same for every delivery of one request before its idempotency record is written (a clone's
name templates), and `intent` says what it is about to do, for that record (where, and under which name).
Names (project_name, dataset_name) are resolved to ids before any of it (resolution.py), by the fields the
model has. The registry (registry.py) maps each action's name to its `Action`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from llmobs_actions.actions.calls import Calls
from llmobs_actions.attempts import ActionResult, Attempt, Intent
from llmobs_actions.backups import Bucket
from llmobs_actions.datadog import (
    ClonedDataset,
    DatadogKeys,
    DatasetSummary,
    DatasetVersion,
    ExperimentSummary,
    ProjectSummary,
)


class DatadogApi(Protocol):
    """The Datadog calls actions make; `read_timeout` caps a call's wait for its answer (the Lambda deadline)."""

    def clone_dataset(
        self,
        keys: DatadogKeys,
        project_id: str,
        dataset_id: str,
        name: str,
        description: str | None,
        *,
        read_timeout: float | None = None,
    ) -> ClonedDataset: ...
    def delete_experiments(
        self, keys: DatadogKeys, experiment_ids: list[str], *, read_timeout: float | None = None
    ) -> None: ...
    def delete_datasets(
        self, keys: DatadogKeys, project_id: str, dataset_ids: list[str], *, read_timeout: float | None = None
    ) -> None: ...
    def restore_dataset_version(
        self, keys: DatadogKeys, project_id: str, dataset_id: str, version: int, *, read_timeout: float | None = None
    ) -> None: ...
    def list_datasets(
        self,
        keys: DatadogKeys,
        project_id: str,
        cursor: str | None,
        limit: int = 100,
        *,
        name: str | None = None,
        read_timeout: float | None = None,
    ) -> tuple[list[DatasetSummary], str | None]: ...
    def find_projects_by_name(
        self, keys: DatadogKeys, name: str, *, read_timeout: float | None = None
    ) -> list[ProjectSummary]: ...
    def find_datasets_by_name(
        self, keys: DatadogKeys, project_id: str, name: str, *, read_timeout: float | None = None
    ) -> list[DatasetSummary]: ...
    def dataset_name(
        self, keys: DatadogKeys, project_id: str, dataset_id: str, *, read_timeout: float | None = None
    ) -> str | None: ...
    def list_experiments(
        self,
        keys: DatadogKeys,
        project_id: str,
        dataset_id: str | None,
        cursor: str | None,
        limit: int = 100,
        *,
        read_timeout: float | None = None,
    ) -> tuple[list[ExperimentSummary], str | None]: ...
    def dataset(
        self, keys: DatadogKeys, project_id: str, dataset_id: str, *, read_timeout: float | None = None
    ) -> DatasetSummary | None: ...
    def project_name(self, keys: DatadogKeys, project_id: str, *, read_timeout: float | None = None) -> str | None: ...
    def dataset_versions(
        self, keys: DatadogKeys, project_id: str, dataset_id: str, *, read_timeout: float | None = None
    ) -> list[DatasetVersion]: ...
    def list_records(
        self,
        keys: DatadogKeys,
        project_id: str,
        dataset_id: str,
        version: int,
        cursor: str | None,
        limit: int = ...,
        *,
        read_timeout: float | None = None,
    ) -> tuple[list[dict[str, object]], str | None]: ...
    def create_dataset(
        self,
        keys: DatadogKeys,
        project_id: str,
        name: str,
        description: str | None,
        *,
        read_timeout: float | None = None,
    ) -> DatasetSummary: ...
    def upload_records(
        self, keys: DatadogKeys, project_id: str, dataset_id: str, csv: bytes, *, read_timeout: float | None = None
    ) -> int: ...
    def throttled_for(self, operation: str) -> float | None: ...


class KeySource(Protocol):
    def current(self) -> DatadogKeys: ...
    def refresh(self, rejected: DatadogKeys) -> DatadogKeys: ...


@dataclass(frozen=True)
class Tools:
    """What an action is given: Datadog, its calls bounded by the attempt and keyed, and the deployment's limits."""

    datadog: DatadogApi
    calls: Calls
    delete_chunk_size: int
    max_ids: int  # the most ids one message may delete, prunes included (MAX_EXPERIMENT_IDS)
    protect_key: str  # the metadata key that marks what no prune may delete (PROTECT_METADATA_KEY)
    bucket: Bucket | None = None  # where exports go (BACKUP_BUCKET, BACKUP_PREFIX); None: none configured


class Action:
    """The protocol every action implements (see the module's docstring); the hooks' defaults are here."""

    name: ClassVar[str]
    model: ClassVar[type[Any]]
    first_operation: ClassVar[str]

    def prepare(self, action: Any, attempt: Attempt, tools: Tools) -> Any:
        return action

    def intent(self, action: Any) -> Intent:
        return Intent(getattr(action, "project_id", None) or "")

    def run(self, action: Any, attempt: Attempt, tools: Tools) -> ActionResult:
        raise NotImplementedError

    def metrics(self, details: Mapping[str, object]) -> dict[str, float]:
        """Counts to emit when it was done now (not a duplicate, not a dry run)."""
        return {}
