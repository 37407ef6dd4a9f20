"""Datadog LLM Observability HTTP client: the llm-obs endpoints the actions call (datasets.py has those of
backups and imports), over the transport's one urllib3 pool."""

from __future__ import annotations

from llmobs_actions.datadog.answers import (
    ClonedDataset,
    DatadogKeys,
    DatasetSummary,
    ExperimentSummary,
    ProjectSummary,
    _attributes_of,
    _cloned_dataset,
    _dataset_summaries,
    _every_page,
    _items,
    _metadata,
    _next_cursor,
    _text,
)
from llmobs_actions.datadog.datasets import DatasetRecords
from llmobs_actions.datadog.transport import segment as _segment


class DatadogClient(DatasetRecords):
    """The llm-obs endpoints the actions call, each returning what the actions need of its answer."""

    def clone_dataset(
        self,
        keys: DatadogKeys,
        project_id: str,
        dataset_id: str,
        name: str,
        description: str | None,
        *,
        read_timeout: float | None = None,
    ) -> ClonedDataset:
        attributes: dict[str, str] = {"name": name}
        if description is not None:
            attributes["description"] = description
        # Datadog's spec requires the source id twice: in the path and as the body's data.id.
        body = {"data": {"type": "datasets", "id": dataset_id, "attributes": attributes}}
        path = f"/{_segment(project_id)}/datasets/{_segment(dataset_id)}/clone"
        answer = self._call("clone_dataset", "POST", path, keys, body=body, read_timeout=read_timeout)
        return _cloned_dataset(answer.body)

    def delete_experiments(
        self, keys: DatadogKeys, experiment_ids: list[str], *, read_timeout: float | None = None
    ) -> None:
        body = {"data": {"type": "experiments", "attributes": {"experiment_ids": experiment_ids}}}
        self._call("delete_experiments", "POST", "/experiments/delete", keys, body=body, read_timeout=read_timeout)

    def delete_datasets(
        self, keys: DatadogKeys, project_id: str, dataset_ids: list[str], *, read_timeout: float | None = None
    ) -> None:
        body = {"data": {"type": "datasets", "attributes": {"dataset_ids": dataset_ids}}}
        path = f"/{_segment(project_id)}/datasets/delete"
        self._call("delete_datasets", "POST", path, keys, body=body, read_timeout=read_timeout)

    def restore_dataset_version(
        self, keys: DatadogKeys, project_id: str, dataset_id: str, version: int, *, read_timeout: float | None = None
    ) -> None:
        """RestoreLLMObsDatasetVersion: the dataset's current version bumped, its records those of `version`."""
        body = {"data": {"type": "datasets", "id": dataset_id, "attributes": {"dataset_version": version}}}
        path = f"/{_segment(project_id)}/datasets/{_segment(dataset_id)}/restore"
        self._call("restore_dataset_version", "POST", path, keys, body=body, read_timeout=read_timeout)

    def list_datasets(
        self,
        keys: DatadogKeys,
        project_id: str,
        cursor: str | None,
        limit: int = 100,
        *,
        name: str | None = None,
        read_timeout: float | None = None,
    ) -> tuple[list[DatasetSummary], str | None]:
        """One page of a project's live datasets, newest first (only those named `name`, if given), and the
        cursor of the next page."""
        query = {"page[limit]": str(limit)}
        if name is not None:
            query["filter[name]"] = name
        if cursor:
            query["page[cursor]"] = cursor
        path = f"/{_segment(project_id)}/datasets"
        answer = self._call("list_datasets", "GET", path, keys, query=query, read_timeout=read_timeout)
        return _dataset_summaries(answer.body), _next_cursor(answer.body)

    def find_datasets_by_name(
        self, keys: DatadogKeys, project_id: str, name: str, *, read_timeout: float | None = None
    ) -> list[DatasetSummary]:
        """Every live dataset of the project named exactly `name` (filter[name] narrows; the name decides)."""
        return _every_page(
            lambda cursor: self.list_datasets(keys, project_id, cursor, name=name, read_timeout=read_timeout),
            lambda dataset: dataset.name == name,
        )

    def find_projects_by_name(
        self, keys: DatadogKeys, name: str, *, read_timeout: float | None = None
    ) -> list[ProjectSummary]:
        """Every project named exactly `name`."""

        def page(cursor: str | None) -> tuple[list[ProjectSummary], str | None]:
            query = {"filter[name]": name, "page[limit]": "100"} | ({"page[cursor]": cursor} if cursor else {})
            answer = self._call("list_projects", "GET", "/projects", keys, query=query, read_timeout=read_timeout)
            found = [
                ProjectSummary(item["id"], str(_attributes_of(item).get("name")))
                for item in _items(answer.body)
                if isinstance(item.get("id"), str)
            ]
            return found, _next_cursor(answer.body)

        return _every_page(page, lambda project: project.name == name)

    def list_experiments(
        self,
        keys: DatadogKeys,
        project_id: str,
        dataset_id: str | None,
        cursor: str | None,
        limit: int = 100,
        *,
        read_timeout: float | None = None,
    ) -> tuple[list[ExperimentSummary], str | None]:
        """One page of a project's live experiments, newest first, and the cursor of the next page."""
        query = {"filter[project_id]": project_id, "page[limit]": str(limit)}
        if dataset_id:
            query["filter[dataset_id]"] = dataset_id
        if cursor:
            query["page[cursor]"] = cursor
        answer = self._call("list_experiments", "GET", "/experiments", keys, query=query, read_timeout=read_timeout)
        found = []
        for item in _items(answer.body):
            attributes = _attributes_of(item)
            if isinstance(item.get("id"), str):
                found.append(
                    ExperimentSummary(
                        item["id"],
                        _text(attributes, "name") or "",
                        _text(attributes, "created_at"),
                        _text(attributes, "dataset_id"),
                        _metadata(attributes),
                    )
                )
        return found, _next_cursor(answer.body)

    def dataset_name(
        self, keys: DatadogKeys, project_id: str, dataset_id: str, *, read_timeout: float | None = None
    ) -> str | None:
        found = self.dataset(keys, project_id, dataset_id, read_timeout=read_timeout)
        return found.name if found is not None else None
