"""Datadog LLM Observability HTTP client: the few llm-obs endpoints we call, over one urllib3 pool."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from importlib.metadata import version
from urllib.parse import quote, urlencode

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from llmobs_actions import __version__
from llmobs_actions.datadog.answers import (
    ClonedDataset,
    DatadogKeys,
    DatasetSummary,
    ExperimentSummary,
    ProjectSummary,
    _Answer,
    _attributes_of,
    _cloned_dataset,
    _error_detail,
    _every_page,
    _items,
    _json_or_text,
    _metadata,
    _next_cursor,
    _text,
)
from llmobs_actions.datadog.errors import DatadogHTTPError, DatadogNoAnswerError, DatadogUnreachableError
from llmobs_actions.datadog.rate_budget import RateBudget, RateLimit

API_PREFIX = "/api/v2/llm-obs/v1"
USER_AGENT = f"llmobs-actions/{__version__} (python {platform.python_version()}; urllib3 {version('urllib3')})"

# (operation name, HTTP status or None when no answer came, elapsed milliseconds)
CallObserver = Callable[[str, int | None, float], None]
# (operation name, method, URL) -> a context around the call, yielding what records the answer's status
CallTracer = Callable[[str, str, str], AbstractContextManager[Callable[[int | None], None]]]


class Transport:
    """One urllib3 pool to Datadog: bounded timeouts, no blind retries, the rate budget, traces and metrics."""

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        max_connections: int = 10,
        observer: CallObserver | None = None,
        tracer: CallTracer | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        # Retries are the queue's job: a blind retry of a clone POST could make a second copy.
        self._pool = urllib3.PoolManager(
            num_pools=2,
            maxsize=max_connections,
            retries=False,
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
        )
        self._observer = observer
        self._tracer = tracer
        self._connect_timeout, self._read_timeout = connect_timeout, read_timeout
        self.rate_budget = RateBudget()

    def _timeout(self, read_cap: float | None) -> urllib3.Timeout:
        """The configured timeouts, the read one cut to `read_cap` (what the Lambda deadline leaves)."""
        read = self._read_timeout if read_cap is None else min(self._read_timeout, read_cap)
        return urllib3.Timeout(connect=self._connect_timeout, read=read)

    def throttled_for(self, operation: str) -> float | None:
        """Seconds until the window of `operation`'s rate limit resets, when Datadog's answers say it is used up."""
        return self.rate_budget.wait_seconds(operation, time.monotonic())

    def _call(
        self,
        operation: str,
        method: str,
        path: str,
        keys: DatadogKeys,
        *,
        body: object | None = None,
        query: Mapping[str, str] | None = None,
        read_timeout: float | None = None,
    ) -> _Answer:
        url = f"{self._base_url}{API_PREFIX}{path}"
        if query:
            url = f"{url}?{urlencode(query)}"
        headers = {
            "DD-API-KEY": keys.api_key,
            "DD-APPLICATION-KEY": keys.app_key,
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        wait = self.rate_budget.wait_seconds(operation, time.monotonic(), reserve=True)
        if wait is not None:
            raise DatadogHTTPError(operation, 429, "rate limit used up (not sent)", RateLimit(reset_seconds=wait))
        payload = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            payload = json.dumps(body, separators=(",", ":")).encode()
        started = time.perf_counter()
        status: int | None = None
        try:
            with self._tracer(operation, method, url) if self._tracer else nullcontext(_ignore) as answered:
                response = self._pool.request(
                    method, url, body=payload, headers=headers, redirect=False, timeout=self._timeout(read_timeout)
                )
                answered(response.status)
            status = response.status
        except (NewConnectionError, ConnectTimeoutError, SSLError) as error:
            # SSLError: the TLS handshake failed (an untrusted certificate, say), so nothing was sent.
            raise DatadogUnreachableError(
                operation, f"{operation}: could not connect to Datadog ({type(error).__name__})"
            ) from None
        except (ReadTimeoutError, ProtocolError) as error:
            raise DatadogNoAnswerError(
                operation, f"{operation}: no answer from Datadog ({type(error).__name__})"
            ) from None
        except HTTPError as error:
            raise DatadogNoAnswerError(
                operation, f"{operation}: request to Datadog failed ({type(error).__name__})"
            ) from None
        finally:
            if self._observer is not None:
                self._observer(operation, status, (time.perf_counter() - started) * 1000)
        self.rate_budget.observe(
            operation, RateLimit.from_headers(response.headers), time.monotonic(), time.time(), response.status != 429
        )
        parsed = _json_or_text(response.data)
        if 200 <= response.status < 300:
            return _Answer(response.status, parsed, response.headers)
        raise DatadogHTTPError(
            operation, response.status, _error_detail(parsed), RateLimit.from_headers(response.headers)
        )


class DatadogClient(Transport):
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
        found = []
        for item in _items(answer.body):
            attributes = _attributes_of(item)
            if isinstance(item.get("id"), str) and isinstance(attributes.get("name"), str):
                version = attributes.get("current_version")
                found.append(
                    DatasetSummary(
                        item["id"],
                        attributes["name"],
                        _text(attributes, "created_at"),
                        _metadata(attributes),
                        version if isinstance(version, int) and not isinstance(version, bool) else None,
                    )
                )
        return found, _next_cursor(answer.body)

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
        path, query = f"/{_segment(project_id)}/datasets", {"filter[id]": dataset_id}
        answer = self._call("get_dataset", "GET", path, keys, query=query, read_timeout=read_timeout)
        for item in _items(answer.body):
            attributes = item.get("attributes")
            if (
                item.get("id") == dataset_id
                and isinstance(attributes, dict)
                and isinstance(attributes.get("name"), str)
            ):
                return str(attributes["name"])
        return None


def _ignore(status: int | None) -> None:
    pass


def _segment(value: str) -> str:
    # Ids are validated by the contract already; quoting again costs nothing and keeps the path whole.
    return quote(value, safe="")
