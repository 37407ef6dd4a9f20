"""A Datadog LLM Observability API emulator: a threaded HTTP server on 127.0.0.1 with in-memory state.

It answers the llm-obs endpoints llmobs-actions uses the way Datadog's OpenAPI spec describes them
(paths, status codes, JSON:API bodies, X-RateLimit-* headers, key checks), and has switches for
latency, injected errors, dropped connections and rate limits, so tests and the demo can break it.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from local.servers import LocalHandler, LocalServer

PREFIX = "/api/v2/llm-obs/v1"
JSON_API = "application/vnd.api+json"
# Datadog's rate limits "differ per endpoint" and each answer names its own: one limit per family here.
RATE_LIMIT_FAMILIES = ("projects", "datasets", "experiments")
SHARED_RATE_LIMIT = "llm_obs_api"  # the one name every endpoint answers with when `shared_rate_limit` is on
_UNLIMITED = (1_000_000, 60)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    client_port: int
    status: int | None = None  # what the emulator answered (None: no answer)


@dataclass
class Fault:
    """A misbehaviour for the next `times` calls whose path contains `path_contains`.

    - `status=N`: answer N (with Datadog's error body) without doing anything;
    - `drop=True`: close the connection without an answer, without doing anything;
    - `status=None` with `delay_seconds`: do the work, then answer late (a slow read: the client may
      time out although the change happened);
    - `after_work=True`: do the work, then lose its answer: answer `status` instead (a 502 from a proxy
      whose upstream had finished), or, with `drop`, close the connection (after `delay_seconds`, if any);
    - `until` (a time.monotonic() instant): the fault lasts until then, however many calls it meets;
    - `skip=N`: the first N calls it would meet pass untouched (a fault in the middle of a chunked delete).
    """

    status: int | None = None
    times: int = 1
    path_contains: str = ""
    method: str | None = None
    drop: bool = False
    delay_seconds: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    rate_limit_headers: bool = True  # False: answer without any X-RateLimit-* header
    until: float | None = None
    after_work: bool = False
    skip: int = 0


@dataclass
class Project:
    id: str
    name: str
    description: str
    created_at: str

    def resource(self) -> dict[str, Any]:
        attributes = {"name": self.name, "description": self.description}
        return {"id": self.id, "type": "projects", "attributes": attributes | _stamps(self.created_at)}


@dataclass
class Dataset:
    id: str
    project_id: str
    name: str
    description: str | None
    records: list[dict[str, Any]]
    current_version: int
    created_at: str
    updated_at: str
    metadata: dict[str, Any] | None = None  # nullable, as Datadog's spec has it
    deleted_at: str | None = None  # soft-deleted: no longer listed, cloned or read
    versions: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # version -> its records

    def __post_init__(self) -> None:
        self.versions.setdefault(self.current_version, [dict(record) for record in self.records])

    def new_version(self, records: list[dict[str, Any]], stamp: str) -> None:
        """Records added, updated, deleted or restored: a new version holds them (names and metadata do not)."""
        self.records = records
        self.current_version += 1
        self.versions[self.current_version] = [dict(record) for record in records]
        self.updated_at = stamp

    def resource(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "datasets",
            "attributes": {
                "name": self.name,
                "description": self.description,
                "metadata": self.metadata,
                "current_version": self.current_version,
                "created_at": self.created_at,
                "updated_at": self.updated_at,
            },
        }

    def record_items(self) -> list[dict[str, Any]]:
        """Records as the records endpoints return them (flat objects, not JSON:API resources)."""
        return [
            {
                "id": record["id"],
                "dataset_id": self.id,
                "input": record.get("input"),
                "expected_output": record.get("expected_output"),
                "metadata": record.get("metadata"),
                "created_at": record.get("created_at", self.created_at),
                "updated_at": record.get("created_at", self.created_at),
            }
            for record in self.records
        ]


@dataclass
class Experiment:
    id: str
    project_id: str
    dataset_id: str
    name: str
    created_at: str
    deleted_at: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def resource(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "experiments",
            "attributes": {
                "name": self.name,
                "project_id": self.project_id,
                "dataset_id": self.dataset_id,
                "description": "",
                "metadata": self.metadata,
                "config": {},
                "status": "completed",
                "created_at": self.created_at,
                "updated_at": self.deleted_at or self.created_at,
                "deleted_at": self.deleted_at,
            },
        }


class DatadogEmulator:
    def __init__(self, api_key: str = "emulator-api-key", app_key: str = "emulator-app-key") -> None:
        self.api_keys = {api_key}
        self.app_keys = {app_key}
        self.latency_seconds = 0.0
        # family (or SHARED_RATE_LIMIT) -> (requests, period seconds); a family without one is unlimited
        self.rate_limits: dict[str, tuple[int, int]] = {}
        self.shared_rate_limit = False  # True: every endpoint counts against one limit, as Datadog may do
        # Datadog's spec documents only 204 for a delete; this switch plays a stricter API that refuses
        # a request naming an experiment that is unknown or already deleted.
        self.refuse_deleting_gone_experiments = False
        self.refuse_deleting_gone_datasets = False  # the same for datasets
        # Datadog's spec does not say whether filter[name] matches exactly; True plays one that matches
        # every name containing the text, so that a client must check names itself.
        self.name_filter_contains = False
        # True plays a paging bug: every page of a listing names a next one, for ever (pup#678 stopped early;
        # this is the other way round). A client must stop somewhere.
        self.listing_never_ends = False
        self.requests: list[RecordedRequest] = []
        self.projects: dict[str, Project] = {}
        self.datasets: dict[str, Dataset] = {}
        self.experiments: dict[str, Experiment] = {}
        self.in_flight = 0
        # Run one each time a page of experiments has been listed: the list changing while a client pages it.
        self.after_listing_experiments: list[Callable[[], None]] = []
        self.max_in_flight = 0  # the most requests it was serving at one moment
        # Where rate-limit windows are in the calendar (epoch seconds): a test may move it (local/clock.py).
        self.clock: Callable[[], float] = time.time
        self._faults: list[Fault] = []
        self._windows: dict[str, tuple[int, int]] = {}  # limit name -> (window start, requests in it)
        self._lock = threading.RLock()
        self._server: LocalServer | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> str:
        emulator = self

        class Handler(_RequestHandler):
            owner = emulator

        self._server = LocalServer("datadog-emulator", Handler).start()
        return self.url

    def stop(self) -> None:
        """Stop serving, and end every open connection and answer still waiting (a late one, say)."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> DatadogEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "emulator not started"
        return self._server.url

    # -- seeding and switches ------------------------------------------------------------------
    def add_project(self, name: str, project_id: str | None = None, description: str = "") -> str:
        with self._lock:
            project = Project(project_id or str(uuid.uuid4()), name, description, _now())
            self.projects[project.id] = project
            return project.id

    def add_dataset(
        self,
        project_id: str,
        name: str,
        records: int = 3,
        dataset_id: str | None = None,
        description: str = "",
        metadata: dict[str, Any] | None = None,
        created_at: str | None = None,
    ) -> Dataset:
        with self._lock:
            stamp = created_at or _now()
            dataset = Dataset(
                id=dataset_id or str(uuid.uuid4()),
                project_id=project_id,
                name=name,
                description=description,
                records=[
                    {
                        "id": f"rec-{uuid.uuid4()}",
                        "input": {"question": f"question {n}"},
                        "expected_output": f"answer {n}",
                    }
                    for n in range(records)
                ],
                current_version=1,
                created_at=stamp,
                updated_at=stamp,
                metadata=metadata,
            )
            self.datasets[dataset.id] = dataset
            return dataset

    def add_experiment(
        self,
        project_id: str,
        dataset_id: str,
        name: str,
        experiment_id: str | None = None,
        created_at: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        with self._lock:
            experiment = Experiment(
                experiment_id or str(uuid.uuid4()),
                project_id,
                dataset_id,
                name,
                created_at or _now(),
                None,
                metadata or {},
            )
            self.experiments[experiment.id] = experiment
            return experiment.id

    def limit_rate(self, requests: int, period: int, family: str | None = None) -> None:
        """`requests` per calendar-aligned `period` for one endpoint family (None: each family and the shared one)."""
        with self._lock:
            for name in [family] if family else [*RATE_LIMIT_FAMILIES, SHARED_RATE_LIMIT]:
                self.rate_limits[name] = (requests, period)

    def outage(self, seconds: float, status: int = 503) -> None:
        """Every call answers `status` for the next `seconds`: a Datadog incident."""
        self.inject(Fault(status=status, until=time.monotonic() + seconds))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def rotate_keys(self, api_key: str, app_key: str) -> None:
        """The old keys stop working at once, as after a rotation in Datadog."""
        with self._lock:
            self.api_keys = {api_key}
            self.app_keys = {app_key}

    def calls(self, method: str | None = None, path_contains: str = "") -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if (method is None or r.method == method) and path_contains in r.path]

    def datasets_named(self, name: str) -> list[Dataset]:
        """Live datasets of that name (a soft-deleted one is gone for every client)."""
        with self._lock:
            return [d for d in self.datasets.values() if d.name == name and d.deleted_at is None]

    def live_dataset(self, dataset_id: str) -> Dataset | None:
        with self._lock:
            dataset = self.datasets.get(dataset_id)
            return dataset if dataset is not None and dataset.deleted_at is None else None

    # -- request handling ----------------------------------------------------------------------
    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            now = time.monotonic()
            self._faults = [f for f in self._faults if f.until is None or f.until > now]
            for fault in self._faults:
                if fault.path_contains in path and fault.method in (None, method):
                    if fault.skip > 0:
                        fault.skip -= 1
                        return None
                    if fault.until is None:
                        fault.times -= 1
                        if fault.times == 0:
                            self._faults.remove(fault)
                    return fault
            return None

    def _rate_limit_headers(self, path: str) -> tuple[bool, dict[str, str]]:
        """Count this request in its limit's calendar-aligned window; True when it is over the limit.

        The headers are lower-case, as Datadog's answers have them (the client must not care).
        """
        family = SHARED_RATE_LIMIT if self.shared_rate_limit else _family(path)
        name = family if family == SHARED_RATE_LIMIT else f"llm_obs_{family}"
        with self._lock:
            limit, period = self.rate_limits.get(family, _UNLIMITED)
            now = self.clock()
            start = int(now // period * period)
            window_start, used = self._windows.get(name, (0, 0))
            used = used + 1 if window_start == start else 1
            self._windows[name] = (start, used)
        headers = {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-period": str(period),
            "x-ratelimit-remaining": str(max(0, limit - used)),
            "x-ratelimit-reset": str(max(1, int(start + period - now + 0.999))),
            "x-ratelimit-name": name,
        }
        return used > limit, headers

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        dataset_path = rf"^{PREFIX}/(?P<project_id>[^/]+)/datasets/(?P<dataset_id>[^/]+)"
        routes: list[tuple[str, str, Callable[..., tuple[int, Any]]]] = [
            ("POST", rf"^{PREFIX}/experiments/delete$", self._delete_experiments),
            ("POST", rf"^{PREFIX}/(?P<project_id>[^/]+)/datasets/delete$", self._delete_datasets),
            ("GET", rf"^{PREFIX}/experiments$", self._list_experiments),
            ("POST", rf"^{PREFIX}/experiments$", self._create_experiment),
            ("GET", rf"^{PREFIX}/projects$", self._list_projects),
            ("POST", rf"^{PREFIX}/projects$", self._create_project),
            ("POST", rf"{dataset_path}/clone$", self._clone),
            ("POST", rf"{dataset_path}/restore$", self._restore),
            ("GET", rf"{dataset_path}/records$", self._records),
            ("POST", rf"{dataset_path}/records$", self._create_records),
            ("GET", rf"^{PREFIX}/(?P<project_id>[^/]+)/datasets$", self._list_datasets),
            ("POST", rf"^{PREFIX}/(?P<project_id>[^/]+)/datasets$", self._create_dataset),
        ]
        matched = False
        for route_method, pattern, action in routes:
            match = re.match(pattern, path)
            if match and route_method == method:
                with self._lock:
                    return action(query=query, body=body, **match.groupdict())
            matched = matched or match is not None
        if matched:
            return 405, _errors("Method Not Allowed", f"{method} is not allowed here")
        return 404, _errors("Not Found", f"no route for {method} {path}")

    def _clone(self, project_id: str, dataset_id: str, body: Any, **_: Any) -> tuple[int, Any]:
        if project_id not in self.projects:
            return 404, _errors("Generic Error", "project not found")
        source = self.live_dataset(dataset_id)
        if source is None or source.project_id != project_id:
            return 404, _errors("Generic Error", "dataset not found")
        data = body.get("data") if isinstance(body, dict) else None
        attributes = data.get("attributes") if isinstance(data, dict) else None
        if not isinstance(data, dict) or data.get("type") != "datasets" or not isinstance(attributes, dict):
            return 400, _errors("Bad Request", "body must be {data: {type: datasets, id, attributes}}")
        if data.get("id") != dataset_id:
            return 400, _errors("Bad Request", "data.id must be the source dataset id")
        name = attributes.get("name")
        if not isinstance(name, str) or not name:
            return 400, _errors("Bad Request", "attributes.name is required")
        description = attributes.get("description")
        stamp = _now()
        clone = Dataset(
            id=str(uuid.uuid4()),
            project_id=project_id,
            name=name,
            description=description if isinstance(description, str) else None,
            records=[dict(record, id=f"rec-{uuid.uuid4()}") for record in source.records],
            current_version=0,
            created_at=stamp,
            updated_at=stamp,
        )
        self.datasets[clone.id] = clone
        return 200, {"data": clone.resource()}

    def _restore(self, project_id: str, dataset_id: str, body: Any, **_: Any) -> tuple[int, Any]:
        """RestoreLLMObsDatasetVersion: the current version bumped, its records those of the version asked for."""
        dataset = self.live_dataset(dataset_id)
        if dataset is None or dataset.project_id != project_id:
            return 404, _errors("Generic Error", "dataset not found")
        data = body.get("data") if isinstance(body, dict) else None
        attributes, problem = _attributes(body, "datasets", required=())
        version = attributes.get("dataset_version")
        if problem or not isinstance(data, dict) or data.get("id") != dataset_id:
            return 400, _errors("Bad Request", problem or "data.id must be the dataset id")
        if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version <= dataset.current_version:
            detail = f"dataset_version must be between 0 and the current version ({dataset.current_version})"
            return 400, _errors("Bad Request", detail)
        if version not in dataset.versions:
            return 404, _errors("Generic Error", f"version {version} is no longer kept")
        dataset.new_version([dict(record) for record in dataset.versions[version]], _now())
        return 200, None

    def _delete_experiments(self, body: Any, **_: Any) -> tuple[int, Any]:
        data = body.get("data") if isinstance(body, dict) else None
        attributes = data.get("attributes") if isinstance(data, dict) else None
        ids = attributes.get("experiment_ids") if isinstance(attributes, dict) else None
        if not isinstance(data, dict) or data.get("type") != "experiments" or not isinstance(ids, list):
            return 400, _errors("Bad Request", "body must be {data: {type: experiments, attributes: {experiment_ids}}}")
        if not all(isinstance(i, str) for i in ids):
            return 400, _errors("Bad Request", "experiment_ids must be strings")
        gone = [i for i in ids if i not in self.experiments or self.experiments[i].deleted_at is not None]
        if gone and self.refuse_deleting_gone_experiments:
            return 404, _errors("Generic Error", f"experiments not found: {', '.join(gone[:5])}")
        stamp = _now()
        # Soft delete; by default deleting an unknown or already-deleted id is not an error (204 either way).
        for experiment_id in ids:
            experiment = self.experiments.get(experiment_id)
            if experiment is not None and experiment.deleted_at is None:
                experiment.deleted_at = stamp
        return 204, None

    def _named(self, actual: str, wanted: str | None) -> bool:
        if wanted is None:
            return True
        return wanted in actual if self.name_filter_contains else wanted == actual

    def _delete_datasets(self, project_id: str, body: Any, **_: Any) -> tuple[int, Any]:
        if project_id not in self.projects:
            return 404, _errors("Generic Error", "project not found")
        attributes, problem = _attributes(body, "datasets", required=("dataset_ids",))
        ids = attributes.get("dataset_ids")
        if problem or not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return 400, _errors("Bad Request", problem or "dataset_ids must be a list of strings")
        live = {i: d for i in ids if (d := self.live_dataset(i)) is not None and d.project_id == project_id}
        gone = [i for i in ids if i not in live]
        if gone and self.refuse_deleting_gone_datasets:
            return 404, _errors("Generic Error", f"datasets not found: {', '.join(gone[:5])}")
        stamp = _now()
        for dataset in live.values():  # soft delete; unknown or already deleted ids are not an error by default
            dataset.deleted_at = stamp
        return 204, None

    def _list_experiments(self, query: dict[str, list[str]], **_: Any) -> tuple[int, Any]:
        project = _first(query, "filter[project_id]")
        dataset = _first(query, "filter[dataset_id]")
        if project is None and dataset is None:
            return 400, _errors("Bad Request", "filter[project_id] is required if filter[dataset_id] is not provided")
        deleted = _first(query, "filter[is_deleted]") == "true"
        ids, name = set(query.get("filter[id]", [])), _first(query, "filter[name]")
        items = [
            e
            for e in sorted(self.experiments.values(), key=lambda e: e.created_at, reverse=True)
            if (project is None or e.project_id == project)
            and (dataset is None or e.dataset_id == dataset)
            and ((e.deleted_at is not None) == deleted)
            and (not ids or e.id in ids)
            and name in (None, e.name)
        ]
        answer = _page([e.resource() for e in items], query, default_limit=5000, endless=self.listing_never_ends)
        if self.after_listing_experiments:
            self.after_listing_experiments.pop(0)()
        return answer

    def _list_projects(self, query: dict[str, list[str]], **_: Any) -> tuple[int, Any]:
        name, wanted_id = _first(query, "filter[name]"), _first(query, "filter[id]")
        items = [
            p.resource()
            for p in sorted(self.projects.values(), key=lambda p: p.created_at, reverse=True)  # newest first
            if self._named(p.name, name) and wanted_id in (None, p.id)
        ]
        return _page(items, query, default_limit=100)

    def _create_project(self, body: Any, **_: Any) -> tuple[int, Any]:
        attributes, problem = _attributes(body, "projects", required=("name",))
        if problem:
            return 400, _errors("Bad Request", problem)
        project_id = self.add_project(attributes["name"], description=str(attributes.get("description") or ""))
        return 201, {"data": self.projects[project_id].resource()}

    def _create_dataset(self, project_id: str, body: Any, **_: Any) -> tuple[int, Any]:
        if project_id not in self.projects:
            return 404, _errors("Generic Error", "project not found")
        attributes, problem = _attributes(body, "datasets", required=("name",))
        if problem:
            return 400, _errors("Bad Request", problem)
        dataset = self.add_dataset(
            project_id, attributes["name"], records=0, description=str(attributes.get("description") or "")
        )
        return 201, {"data": dataset.resource()}

    def _create_records(self, project_id: str, dataset_id: str, body: Any, **_: Any) -> tuple[int, Any]:
        dataset = self.live_dataset(dataset_id)
        if dataset is None or dataset.project_id != project_id:
            return 404, _errors("Generic Error", "dataset not found")
        attributes, problem = _attributes(body, "records", required=("records",))
        records = attributes.get("records") if not problem else None
        if problem or not isinstance(records, list) or not all(isinstance(r, dict) and "input" in r for r in records):
            return 400, _errors("Bad Request", problem or "records must be a list of objects with an input")
        stamp = _now()
        new = [
            {
                "id": f"rec-{uuid.uuid4()}",
                "input": r["input"],
                "expected_output": r.get("expected_output"),
                "metadata": r.get("metadata"),
                "created_at": stamp,
            }
            for r in records
        ]
        dataset.new_version(dataset.records + new, stamp)
        created = [item for item in dataset.record_items() if item["id"] in {r["id"] for r in new}]
        return 201, {"data": [{"records": created}]}

    def _create_experiment(self, body: Any, **_: Any) -> tuple[int, Any]:
        attributes, problem = _attributes(body, "experiments", required=("project_id", "name"))
        if problem:
            return 400, _errors("Bad Request", problem)
        if attributes["project_id"] not in self.projects:
            return 404, _errors("Generic Error", "project not found")
        experiment_id = self.add_experiment(
            attributes["project_id"], str(attributes.get("dataset_id") or ""), attributes["name"]
        )
        return 201, {"data": self.experiments[experiment_id].resource()}

    def _list_datasets(self, project_id: str, query: dict[str, list[str]], **_: Any) -> tuple[int, Any]:
        if project_id not in self.projects:
            return 404, _errors("Generic Error", "project not found")
        name, wanted_id = _first(query, "filter[name]"), _first(query, "filter[id]")
        items = [
            d.resource()
            for d in sorted(self.datasets.values(), key=lambda d: d.created_at, reverse=True)
            if d.project_id == project_id
            and d.deleted_at is None
            and self._named(d.name, name)
            and wanted_id in (None, d.id)
        ]
        return _page(items, query, default_limit=100)

    def _records(self, project_id: str, dataset_id: str, query: dict[str, list[str]], **_: Any) -> tuple[int, Any]:
        dataset = self.live_dataset(dataset_id)
        if dataset is None or dataset.project_id != project_id:
            return 404, _errors("Generic Error", "dataset not found")
        return _page(dataset.record_items(), query, default_limit=100)


class _RequestHandler(LocalHandler):
    owner: DatadogEmulator
    _recorded: RecordedRequest

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        emulator = self.owner
        with emulator._lock:
            emulator.in_flight += 1
            emulator.max_in_flight = max(emulator.max_in_flight, emulator.in_flight)
        try:
            self._answer()
        finally:
            with emulator._lock:
                emulator.in_flight -= 1

    def _answer(self) -> None:
        emulator = self.owner
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", errors="replace")
        query = parse_qs(parts.query)
        with emulator._lock:
            self._recorded = RecordedRequest(
                self.command, parts.path, query, dict(self.headers.items()), body, self.client_address[1]
            )
            emulator.requests.append(self._recorded)
        over_limit, limit_headers = emulator._rate_limit_headers(parts.path)
        fault = emulator._take_fault(self.command, parts.path)
        self.server.stopping.wait(emulator.latency_seconds)
        if fault is not None and fault.drop and not fault.after_work:
            self._hang_up()
            return
        if fault is not None and fault.status is not None and not fault.after_work:
            headers = (limit_headers if fault.rate_limit_headers else {}) | {
                k.lower(): v for k, v in fault.headers.items()
            }
            self._send(fault.status, _errors_for(fault.status), headers)
            return
        if self.headers.get("DD-API-KEY") not in emulator.api_keys:
            self._send(401, {"errors": ["Unauthorized"]}, limit_headers)
            return
        if self.headers.get("DD-APPLICATION-KEY") not in emulator.app_keys:
            self._send(403, {"errors": ["Forbidden"]}, limit_headers)
            return
        if over_limit:
            self._send(429, {"errors": ["Too many requests"]}, limit_headers)
            return
        if raw and not isinstance(body, dict | list):
            self._send(400, _errors("Bad Request", "body is not JSON"), limit_headers)
            return
        status, answer = emulator.route(self.command, parts.path, query, body)
        if fault is not None:
            self.server.stopping.wait(fault.delay_seconds)  # the change happened; the answer comes too late
            if fault.after_work and fault.drop:
                self._hang_up()
                return
            if fault.after_work and fault.status is not None:
                self._send(fault.status, _errors_for(fault.status), limit_headers)
                return
        self._send(status, answer, limit_headers)

    def _hang_up(self) -> None:
        self._recorded.status = None
        self.close_connection = True
        self.connection.close()  # the client sees a reset / no answer

    def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
        self._recorded.status = status
        payload = b"" if body is None or status == 204 else json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if payload:
            self.send_header("Content-Type", JSON_API)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)


def _stamps(created_at: str) -> dict[str, str]:
    return {"created_at": created_at, "updated_at": created_at}


def _attributes(body: Any, kind: str, required: tuple[str, ...]) -> tuple[dict[str, Any], str | None]:
    """The attributes of a JSON:API request body, or why the body is not one of `kind`."""
    data = body.get("data") if isinstance(body, dict) else None
    attributes = data.get("attributes") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("type") != kind or not isinstance(attributes, dict):
        return {}, f"body must be {{data: {{type: {kind}, attributes}}}}"
    missing = [name for name in required if attributes.get(name) in (None, "")]
    return attributes, (f"attributes.{missing[0]} is required" if missing else None)


def _errors(title: str, detail: str) -> dict[str, Any]:
    return {"errors": [{"title": title, "detail": detail}]}


def _errors_for(status: int) -> dict[str, Any]:
    if status == 429:
        return {"errors": ["Too many requests"]}
    titles = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict"}
    return _errors(titles.get(status, "Internal Server Error" if status >= 500 else "Error"), f"injected {status}")


def _family(path: str) -> str:
    """Which rate limit an endpoint counts against: its resource, the way Datadog groups its endpoints."""
    rest = path.removeprefix(PREFIX).strip("/").split("/")
    if rest[0] in ("experiments", "projects"):
        return rest[0]
    return "datasets"  # /{project_id}/datasets/...: datasets, their records, clones


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _page(
    items: list[dict[str, Any]], query: dict[str, list[str]], default_limit: int, endless: bool = False
) -> tuple[int, Any]:
    """Cursor pagination as Datadog does it: page[cursor] in, meta.after out (absent on the last page)."""
    try:
        limit = min(int(_first(query, "page[limit]") or default_limit), 5000)
        start = int(_first(query, "page[cursor]") or 0)
    except ValueError:
        return 400, _errors("Bad Request", "invalid page parameters")
    page = items[start : start + max(limit, 1)]
    after = str(start + len(page)) if start + len(page) < len(items) else None
    if endless:
        after = str(start + 1)
    return 200, {"data": page, "meta": {"after": after}}
