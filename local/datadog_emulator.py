"""A Datadog LLM Observability API emulator: a threaded HTTP server on 127.0.0.1 with in-memory state.

It answers the llm-obs endpoints llmobs-actions uses the way Datadog's OpenAPI spec describes them
(paths, status codes, JSON:API bodies, X-RateLimit-* headers, key checks), and has switches for
latency, injected errors, dropped connections and rate limits, so tests and the demo can break it.

Datasets keep their records per version, as Datadog does: batch_update and the CSV upload make versions,
filter[version] lists one, the export streams one as CSV, restore copies one into a new version, and
`expire_versions` plays Datadog's retention (a dropped version is a 404 everywhere).
"""

from __future__ import annotations

import base64
import copy
import csv
import io
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.parser import BytesHeaderParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

from local.servers import LocalHandler, LocalServer

PREFIX = "/api/v2/llm-obs/v1"
PREFIX_V2 = "/api/v2/llm-obs/v2"  # the records upload lives here (UploadLLMObsDatasetRecordsFile), not under v1
JSON_API = "application/vnd.api+json"
# The upload's body is multipart/form-data, not JSON: it reaches its route as bytes.
_RAW_BODY_ROUTE = re.compile(rf"^{PREFIX_V2}/[^/]+/datasets/[^/]+/records/upload$")
# ddtrace switches from batch_update to the CSV upload above this size (BATCH_UPDATE_THRESHOLD): the size
# Datadog was seen to refuse with 413 Payload Too Large. The spec gives no number.
BATCH_UPDATE_MAX_BYTES = 5 * 1024 * 1024
CSV_COLUMNS = ("id", "input", "expected_output", "metadata", "tags")  # the export's header, the upload's columns
UPLOAD_PROGRESS_EVERY = 1000  # rows between two `progress` events of an upload
# Datadog's retention (its docs; the spec says nothing): the current version 3 years, a previous one 90 days
# after its last use (or its creation, when never used).
CURRENT_VERSION_YEARS = 3
PREVIOUS_VERSION_DAYS = 90
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
    - `skip=N`: the first N calls it would meet pass untouched (a fault in the middle of a chunked delete);
    - `cut_stream_after=N`: do the work, then send a streamed answer (an upload's events, an export's CSV) only
      as far as its status, headers and first N chunks, and close the connection: a stream dropped half-way.
      An answer that is not streamed (an error, say) is not sent at all.
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
    cut_stream_after: int | None = None


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
class DatasetVersion:
    """What Datadog tells of a version besides its records (ListLLMObsDatasetVersions), and when it was made."""

    number: int
    created_at: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    last_used: str | None = None  # None until an experiment run references it, as the spec has it

    def resource(self, dataset_id: str) -> dict[str, Any]:
        attributes = {"dataset_id": dataset_id, "version_number": self.number, "last_used": self.last_used}
        return {"id": self.id, "type": "dataset_version", "attributes": attributes}


@dataclass
class Dataset:
    """A dataset and its versions' records.

    Records are JSON-serialisable dicts: id, input, expected_output, metadata, tags (a list of strings; kept,
    though the JSON listing has no field for them), created_at, updated_at. `records` is the current version's
    list (the same list as `versions[current_version]`); a previous version's records never change.
    """

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
    versions: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # kept version -> its records
    version_info: dict[int, DatasetVersion] = field(default_factory=dict)  # kept version -> id, created, last used

    def __post_init__(self) -> None:
        for record in self.records:
            _complete(record, self.created_at)
        self.versions.setdefault(self.current_version, self.records)
        for number in self.versions:
            self.version_info.setdefault(number, DatasetVersion(number, self.created_at))

    def new_version(self, records: list[dict[str, Any]], stamp: str) -> None:
        """Records added, updated, deleted or restored: a new version holds them (names and metadata do not)."""
        self.records = [_complete(copy.deepcopy(record), stamp) for record in records]
        self.current_version += 1
        self.versions[self.current_version] = self.records
        self.version_info[self.current_version] = DatasetVersion(self.current_version, stamp)
        self.updated_at = stamp

    def replace_current(self, records: list[dict[str, Any]], stamp: str) -> None:
        """The current version's records changed in place (batch_update with create_new_version false)."""
        self.records = [_complete(copy.deepcopy(record), stamp) for record in records]
        self.versions[self.current_version] = self.records
        self.version_info.setdefault(self.current_version, DatasetVersion(self.current_version, stamp))
        self.updated_at = stamp

    def records_of(self, version: int) -> list[dict[str, Any]]:
        """A kept version's records (KeyError for one that is not kept)."""
        return self.records if version == self.current_version and version in self.versions else self.versions[version]

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

    def item(self, record: dict[str, Any]) -> dict[str, Any]:
        """A record as the records endpoints return it: LLMObsDatasetRecordDataResponse, flat, with no tags."""
        created = record.get("created_at", self.created_at)
        return {
            "id": record["id"],
            "dataset_id": self.id,
            "input": record.get("input"),
            "expected_output": record.get("expected_output"),
            "metadata": record.get("metadata"),
            "created_at": created,
            "updated_at": record.get("updated_at", created),
        }

    def record_items(self, version: int | None = None) -> list[dict[str, Any]]:
        """A kept version's records (the current one by default) as listed: newest first, as the spec says."""
        records = self.records_of(self.current_version if version is None else version)
        return [self.item(record) for record in _newest_first(records)]


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
        # Plays short pages (dd-trace-py#14505): every cursor-paged listing answers at most this many items a
        # page, whatever page[limit] asked; meta.after still leads on. None: pages as full as asked.
        self.short_pages: int | None = None
        self.batch_update_max_bytes = BATCH_UPDATE_MAX_BYTES  # a larger batch_update body is refused with 413
        # The spec's "progress: incremental record counts written so far" suggests Datadog may keep the rows an
        # upload wrote before its `error` event. False (all or nothing): nothing is written. True: the rows
        # before the bad one are written, in one new version.
        self.upload_keeps_partial_writes = False
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

    def use_version(self, dataset_id: str, version: int, at: str | None = None) -> None:
        """What an experiment run does to the version it reads: its `last_used` becomes `at` (default now).

        KeyError for an unknown dataset or a version that is no longer kept.
        """
        with self._lock:
            dataset = self.datasets[dataset_id]
            if version not in dataset.versions:
                raise KeyError(f"version {version} of dataset {dataset_id} is not kept")
            dataset.version_info[version].last_used = at or _now()

    def expire_versions(self, now: datetime) -> list[tuple[str, int]]:
        """Datadog's retention at `now`: the versions it has dropped by then, dropped here; returns them.

        A previous version goes 90 days after its last use (or its creation, when never used); the current one
        3 years after its creation (its records then are gone too). A naive `now` is taken as UTC.
        """
        moment = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
        dropped: list[tuple[str, int]] = []
        with self._lock:
            for dataset in self.datasets.values():
                for number in sorted(dataset.versions):
                    info = dataset.version_info.setdefault(number, DatasetVersion(number, dataset.created_at))
                    if number == dataset.current_version:
                        gone = moment > _years_later(_instant(info.created_at), CURRENT_VERSION_YEARS)
                    else:
                        last = _instant(info.last_used or info.created_at)
                        gone = moment - last > timedelta(days=PREVIOUS_VERSION_DAYS)
                    if gone:
                        del dataset.versions[number]
                        del dataset.version_info[number]
                        dropped.append((dataset.id, number))
                        if number == dataset.current_version:
                            dataset.records = []
        return dropped

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

    def route(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, raw: bytes = b"", content_type: str = ""
    ) -> tuple[int, Any]:
        """The status and answer of one request: a JSON document, None (no body) or a `_Stream`.

        `raw` is the body as it came and `content_type` its Content-Type (the upload's multipart body).
        """
        dataset_path = rf"^{PREFIX}/(?P<project_id>[^/]+)/datasets/(?P<dataset_id>[^/]+)"
        upload_path = rf"^{PREFIX_V2}/(?P<project_id>[^/]+)/datasets/(?P<dataset_id>[^/]+)/records/upload$"
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
            ("POST", rf"{dataset_path}/batch_update$", self._batch_update),
            ("GET", rf"{dataset_path}/versions$", self._list_versions),
            ("GET", rf"{dataset_path}/export$", self._export),
            ("POST", upload_path, self._upload),
            ("GET", rf"^{PREFIX}/(?P<project_id>[^/]+)/datasets$", self._list_datasets),
            ("POST", rf"^{PREFIX}/(?P<project_id>[^/]+)/datasets$", self._create_dataset),
        ]
        matched = False
        for route_method, pattern, action in routes:
            match = re.match(pattern, path)
            if match and route_method == method:
                with self._lock:
                    return action(query=query, body=body, raw=raw, content_type=content_type, **match.groupdict())
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
        answer = _page(
            [e.resource() for e in items],
            query,
            default_limit=5000,
            endless=self.listing_never_ends,
            most=self.short_pages,
        )
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
        return _page(items, query, default_limit=100, most=self.short_pages)

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
        experiment = self.experiments[experiment_id]
        # A run references the dataset's current version: its last_used moves (no version is made).
        dataset = self.live_dataset(experiment.dataset_id)
        if (
            dataset is not None
            and dataset.project_id == experiment.project_id
            and dataset.current_version in dataset.versions
        ):
            dataset.version_info[dataset.current_version].last_used = experiment.created_at
        return 201, {"data": experiment.resource()}

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
        return _page(items, query, default_limit=100, most=self.short_pages)

    def _dataset(self, project_id: str, dataset_id: str) -> Dataset | None:
        dataset = self.live_dataset(dataset_id)
        return dataset if dataset is not None and dataset.project_id == project_id else None

    def _records(self, project_id: str, dataset_id: str, query: dict[str, list[str]], **_: Any) -> tuple[int, Any]:
        """ListLLMObsDatasetRecords: one version's records (filter[version], default the current), newest first.

        The cursor is opaque and names the version it pages: a walk stays on the version it began with, so it
        meets each record once even while newer versions are made.
        """
        dataset = self._dataset(project_id, dataset_id)
        if dataset is None:
            return 404, _errors("Generic Error", "dataset not found")
        limit_text, cursor, wanted = (_first(query, n) for n in ("page[limit]", "page[cursor]", "filter[version]"))
        if limit_text is not None and not _INTEGER.fullmatch(limit_text):
            return 400, _errors("Bad Request", "page[limit] must be an integer")
        limit = int(limit_text) if limit_text is not None else 100
        if limit < 1:
            return 400, _errors("Bad Request", "page[limit] must be at least 1")
        if wanted is not None and not _INTEGER.fullmatch(wanted):
            return 400, _errors("Bad Request", "filter[version] must be an integer")
        start = 0
        if cursor is not None:
            position = _read_cursor(cursor)
            if position is None or position[0] != dataset.id:
                return 400, _errors("Bad Request", "page[cursor] is not a cursor of this listing")
            version, start = position[1], position[2]
            if wanted is not None and int(wanted) != version:
                return 400, _errors("Bad Request", f"page[cursor] pages version {version}, not filter[version]")
            if version not in dataset.versions:
                return 404, _errors("Generic Error", f"version {version} is no longer kept")
        else:
            version, refused = _version_asked(dataset, wanted, "filter[version]")
            if refused is not None:
                return refused
        items = dataset.record_items(version)
        size = min(limit, 5000, max(1, self.short_pages or limit))
        page = items[start : start + size]
        end = start + len(page)
        return 200, {"data": page, "meta": {"after": _cursor(dataset.id, version, end) if end < len(items) else None}}

    def _list_versions(self, project_id: str, dataset_id: str, **_: Any) -> tuple[int, Any]:
        """ListLLMObsDatasetVersions: the versions still kept, oldest first; no paging, no meta."""
        dataset = self._dataset(project_id, dataset_id)
        if dataset is None:
            return 404, _errors("Generic Error", "dataset not found")
        return 200, {"data": [dataset.version_info[n].resource(dataset.id) for n in sorted(dataset.versions)]}

    def _batch_update(self, project_id: str, dataset_id: str, body: Any, raw: bytes, **_: Any) -> tuple[int, Any]:
        """BatchUpdateLLMObsDataset: deletes, updates, then inserts, all or nothing; by default one new version.

        Stricter than the spec where it is silent: an inserted id already in the dataset (or twice in the batch)
        is 409 Conflict, an unknown id to update or delete 404, a body over `batch_update_max_bytes` 413, and
        a field the spec does not name 400 (its effect would be unknown). attributes.tags (the spec does not say
        what they do) are added to every inserted record. The answer lists the inserted records, then the updated.
        """
        size = len(raw) if raw else len(json.dumps(body).encode())
        if size > self.batch_update_max_bytes:
            detail = f"the body is {size} bytes; at most {self.batch_update_max_bytes} are accepted"
            return 413, _errors("Payload Too Large", detail)
        dataset = self._dataset(project_id, dataset_id)
        if dataset is None:
            return 404, _errors("Generic Error", "dataset not found")
        data = body.get("data") if isinstance(body, dict) else None
        attributes, problem = _attributes(body, "datasets", required=())
        if problem or not isinstance(data, dict) or data.get("id") != dataset_id:
            return 400, _errors("Bad Request", problem or "data.id must be the dataset id")
        problem = _batch_problem(attributes)
        if problem:
            return 400, _errors("Bad Request", problem)
        inserts: list[dict[str, Any]] = attributes.get("insert_records", [])
        updates: list[dict[str, Any]] = attributes.get("update_records", [])
        deletes: list[str] = attributes.get("delete_records", [])
        existing = {record["id"] for record in dataset.records}
        given = [record["id"] for record in inserts if "id" in record]
        taken = sorted({i for i in given if i in existing} | _repeated(given))
        if taken:
            return 409, _errors("Conflict", f"record ids already in the dataset or the batch: {', '.join(taken[:5])}")
        changed = [record["id"] for record in updates]
        twice = sorted(_repeated(changed) | _repeated(deletes) | (set(changed) & set(deletes)))
        if twice:
            return 400, _errors("Bad Request", f"record ids named twice to update or delete: {', '.join(twice[:5])}")
        unknown = [i for i in [*changed, *deletes] if i not in existing]
        if unknown:
            return 404, _errors("Generic Error", f"records not found: {', '.join(unknown[:5])}")
        stamp = _now()
        result = [copy.deepcopy(record) for record in dataset.records if record["id"] not in set(deletes)]
        by_id = {record["id"]: record for record in result}
        updated = []
        for change in updates:
            record = by_id[change["id"]]
            for name in ("input", "expected_output", "metadata"):
                if name in change:
                    record[name] = copy.deepcopy(change[name])
            if "tag_operations" in change:
                record["tags"] = _tag_operations(record.get("tags") or [], change["tag_operations"])
            record["updated_at"] = stamp
            updated.append(record)
        inserted = []
        for insert in inserts:
            tags = _unique([*insert.get("tags", []), *attributes.get("tags", [])])
            record = {
                "id": insert.get("id") or f"rec-{uuid.uuid4()}",
                "input": copy.deepcopy(insert["input"]),
                "expected_output": copy.deepcopy(insert.get("expected_output")),
                "metadata": copy.deepcopy(insert.get("metadata")),
                "tags": _tag_operations(tags, insert["tag_operations"]) if "tag_operations" in insert else tags,
                "created_at": stamp,
                "updated_at": stamp,
            }
            result.append(record)
            inserted.append(record)
        if attributes.get("create_new_version", True):
            dataset.new_version(result, stamp)
        else:
            dataset.replace_current(result, stamp)
        return 200, {"data": [{"records": [dataset.item(record) for record in [*inserted, *updated]]}]}

    def _export(self, project_id: str, dataset_id: str, query: dict[str, list[str]], **_: Any) -> tuple[int, Any]:
        """ExportLLMObsDataset: one version's records as CSV (text/csv, chunked), in the listing's order."""
        dataset = self._dataset(project_id, dataset_id)
        if dataset is None:
            return 404, _errors("Generic Error", "dataset not found")
        if _first(query, "format") not in (None, "csv"):
            return 400, _errors("Bad Request", "format must be csv")
        wanted = _first(query, "version")
        if wanted is not None and not _INTEGER.fullmatch(wanted):
            return 400, _errors("Bad Request", "version must be an integer")
        version, refused = _version_asked(dataset, wanted, "version")
        if refused is not None:
            return refused
        rows = [
            [
                record["id"],
                _write_cell(record.get("input")),
                _write_cell(record.get("expected_output")),
                _write_cell(record.get("metadata")),
                json.dumps(record["tags"], ensure_ascii=False) if record.get("tags") else "",
            ]
            for record in _newest_first(dataset.records_of(version))
        ]
        chunks = [_csv_text([list(CSV_COLUMNS)])] + [_csv_text(rows[i : i + 500]) for i in range(0, len(rows), 500)]
        return 200, _Stream("text/csv", [chunk.encode() for chunk in chunks])

    def _upload(
        self, project_id: str, dataset_id: str, query: dict[str, list[str]], raw: bytes, content_type: str, **_: Any
    ) -> tuple[int, Any]:
        """UploadLLMObsDatasetRecordsFile: a CSV in a multipart `file` part, answered as Server-Sent Events.

        What is wrong before the stream starts (the dataset, the query, the multipart body) is a JSON 400/404;
        what is wrong in the CSV is an `error` event, and then nothing is written (unless
        `upload_keeps_partial_writes`). A complete upload makes exactly one new version holding the result.
        """
        dataset = self._dataset(project_id, dataset_id)
        if dataset is None:
            return 404, _errors("Generic Error", "dataset not found")
        try:
            deduplicate = _flag(query, "deduplicate", default=False)
            overwrite = _flag(query, "overwrite", default=True)
            _flag(query, "include[user_data]", default=False)  # accepted; the stream has no user data to enrich
        except ValueError as refused:
            return 400, _errors("Bad Request", str(refused))
        tags = query.get("tags", [])
        if not all(tags):
            return 400, _errors("Bad Request", "tags must not be empty")
        file, problem = _multipart_file(content_type, raw)
        if file is None:
            return 400, _errors("Bad Request", problem or "the body must be multipart/form-data with a file part")
        stamp = _now()
        upload = _ingest(dataset.records, file, deduplicate=deduplicate, overwrite=overwrite, tags=tags, stamp=stamp)
        if upload.error is None or (self.upload_keeps_partial_writes and upload.written):
            dataset.new_version(upload.records, stamp)
        if upload.error is None:
            upload.events.append(_event("completed", {"records_created": upload.created}))
        else:
            upload.events.append(_event("error", {"message": upload.error}))
        return 200, _Stream("text/event-stream", upload.events)


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
        takes_raw = _RAW_BODY_ROUTE.match(parts.path) is not None  # multipart: recorded as text, routed as bytes
        body: Any
        try:
            body = json.loads(raw) if raw and not takes_raw else None
        except ValueError:
            body = None
        if raw and body is None:
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
        if raw and not takes_raw and not isinstance(body, dict | list):
            self._send(400, _errors("Bad Request", "body is not JSON"), limit_headers)
            return
        content_type = self.headers.get("Content-Type") or ""
        routed_body = None if takes_raw else body
        status, answer = emulator.route(
            self.command, parts.path, query, routed_body, raw=raw, content_type=content_type
        )
        if fault is not None:
            self.server.stopping.wait(fault.delay_seconds)  # the change happened; the answer comes too late
            if fault.cut_stream_after is not None:
                if isinstance(answer, _Stream):
                    self._send(status, answer, limit_headers, cut_after=fault.cut_stream_after)
                else:
                    self._recorded.status = None
                self.close_connection = True
                self.connection.close()  # the stream ends without its last chunk: the client sees it cut
                return
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

    def _send(self, status: int, body: Any, headers: dict[str, str], cut_after: int | None = None) -> None:
        self._recorded.status = status
        if isinstance(body, _Stream):
            self._stream(status, body, headers, cut_after)
            return
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

    def _stream(self, status: int, body: _Stream, headers: dict[str, str], cut_after: int | None) -> None:
        """A streamed answer: chunked (HTTP/1.1), each chunk as the stream made it; `cut_after`: only so many."""
        chunked = self.request_version == "HTTP/1.1"
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", body.content_type)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(sum(len(chunk) for chunk in body.chunks)))
        self.end_headers()
        for chunk in body.chunks if cut_after is None else body.chunks[:cut_after]:
            if chunk:
                self.wfile.write(b"%X\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
        if chunked and cut_after is None:
            self.wfile.write(b"0\r\n\r\n")


@dataclass
class _Stream:
    """A streamed answer (not JSON): its Content-Type and its chunks, sent as they are."""

    content_type: str
    chunks: list[bytes]


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
    titles = {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        409: "Conflict",
        413: "Payload Too Large",
    }
    return _errors(titles.get(status, "Internal Server Error" if status >= 500 else "Error"), f"injected {status}")


def _family(path: str) -> str:
    """Which rate limit an endpoint counts against: its resource, the way Datadog groups its endpoints."""
    rest = re.sub(r"^/api/v2/llm-obs/v\d+", "", path).strip("/").split("/")  # v1, and v2's records upload
    if rest[0] in ("experiments", "projects"):
        return rest[0]
    return "datasets"  # /{project_id}/datasets/...: datasets, their records, clones


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _page(
    items: list[dict[str, Any]],
    query: dict[str, list[str]],
    default_limit: int,
    endless: bool = False,
    most: int | None = None,
) -> tuple[int, Any]:
    """Cursor pagination as Datadog does it: page[cursor] in, meta.after out (absent on the last page).

    `most`: answer at most that many a page, whatever page[limit] asked (the emulator's `short_pages`).
    """
    try:
        limit = min(int(_first(query, "page[limit]") or default_limit), 5000, max(1, most or 5000))
        start = int(_first(query, "page[cursor]") or 0)
    except ValueError:
        return 400, _errors("Bad Request", "invalid page parameters")
    page = items[start : start + max(limit, 1)]
    after = str(start + len(page)) if start + len(page) < len(items) else None
    if endless:
        after = str(start + 1)
    return 200, {"data": page, "meta": {"after": after}}


_INTEGER = re.compile(r"-?[0-9]+")
_INSERT_FIELDS = frozenset({"id", "input", "expected_output", "metadata", "tags", "tag_operations"})
_UPDATE_FIELDS = frozenset({"id", "input", "expected_output", "metadata", "tag_operations"})
_BATCH_FIELDS = frozenset({"create_new_version", "insert_records", "update_records", "delete_records", "tags"})


def _complete(record: dict[str, Any], stamp: str) -> dict[str, Any]:
    """A record with every field the emulator keeps (the ones it was seeded without filled in)."""
    record.setdefault("expected_output", None)
    record.setdefault("metadata", None)
    record.setdefault("tags", [])
    record.setdefault("created_at", stamp)
    record.setdefault("updated_at", record["created_at"])
    return record


def _instant(stamp: str | None) -> datetime:
    """A timestamp as an aware datetime (the earliest one for what is not a timestamp)."""
    try:
        moment = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _years_later(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February into a year without one
        return moment.replace(year=moment.year + years, day=28)


def _newest_first(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sorted by creation, newest first (the spec's order); those made at the same instant in insertion order."""
    return sorted(records, key=lambda record: _instant(record.get("created_at")), reverse=True)  # stable


def _cursor(dataset_id: str, version: int, offset: int) -> str:
    """An opaque page[cursor]: the dataset, the version it pages (a version's records never change), where."""
    return base64.urlsafe_b64encode(json.dumps([dataset_id, version, offset]).encode()).decode()


def _read_cursor(cursor: str) -> tuple[str, int, int] | None:
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError:
        return None
    if not (isinstance(position, list) and len(position) == 3 and isinstance(position[0], str)):
        return None
    if not all(type(n) is int and n >= 0 for n in position[1:]):
        return None
    return position[0], position[1], position[2]


def _version_asked(dataset: Dataset, wanted: str | None, name: str) -> tuple[int, tuple[int, Any] | None]:
    """The version a query names (the current one by default), or why it is refused: 400 out of range, 404 gone."""
    version = dataset.current_version if wanted is None else int(wanted)
    if not 0 <= version <= dataset.current_version:
        detail = f"{name} must be between 0 and the current version ({dataset.current_version})"
        return version, (400, _errors("Bad Request", detail))
    if version not in dataset.versions:
        return version, (404, _errors("Generic Error", f"version {version} is no longer kept"))
    return version, None


def _tags_problem(tags: Any, where: str) -> str | None:
    if not isinstance(tags, list) or not all(isinstance(tag, str) and tag for tag in tags):
        return f"{where} must be a list of non-empty strings"
    return None


def _tag_operations_problem(operations: Any, where: str) -> str | None:
    if not isinstance(operations, dict) or not set(operations) <= {"add", "remove", "set"}:
        return f"{where} must be an object of add, remove and set"
    problems = (_tags_problem(tags, f"{where}.{name}") for name, tags in operations.items())
    return next((problem for problem in problems if problem), None)


def _record_problem(record: Any, where: str, fields: frozenset[str], insert: bool) -> str | None:
    """Why one insert_records / update_records item is not what the spec's schema allows (None: it is)."""
    if not isinstance(record, dict):
        return f"{where} must be an object"
    unknown = sorted(set(record) - fields)
    if unknown:
        return f"{where}.{unknown[0]} is not a field of this record"
    if insert and "input" not in record:
        return f"{where}.input is required"
    if ("id" in record or not insert) and not (isinstance(record.get("id"), str) and record["id"]):
        return f"{where}.id must be a non-empty string"
    if "metadata" in record and not isinstance(record["metadata"], dict):
        return f"{where}.metadata must be an object"
    if "tags" in record and (problem := _tags_problem(record["tags"], f"{where}.tags")):
        return problem
    if "tag_operations" in record:
        return _tag_operations_problem(record["tag_operations"], f"{where}.tag_operations")
    return None


def _batch_problem(attributes: dict[str, Any]) -> str | None:
    """Why batch_update attributes are not LLMObsDatasetBatchUpdateDataAttributesRequest (None: they are)."""
    unknown = sorted(set(attributes) - _BATCH_FIELDS)
    if unknown:
        return f"attributes.{unknown[0]} is not a batch_update field"
    if not isinstance(attributes.get("create_new_version", True), bool):
        return "attributes.create_new_version must be a boolean"
    for name in ("insert_records", "update_records", "delete_records", "tags"):
        if name in attributes and not isinstance(attributes[name], list):
            return f"attributes.{name} must be a list"
    if "tags" in attributes and (problem := _tags_problem(attributes["tags"], "attributes.tags")):
        return problem
    if not all(isinstance(i, str) and i for i in attributes.get("delete_records", [])):
        return "attributes.delete_records must be a list of record ids"
    for name, fields, insert in (("insert_records", _INSERT_FIELDS, True), ("update_records", _UPDATE_FIELDS, False)):
        for number, record in enumerate(attributes.get(name, [])):
            if problem := _record_problem(record, f"attributes.{name}[{number}]", fields, insert):
                return problem
    return None


def _repeated(values: list[str]) -> set[str]:
    seen: set[str] = set()
    twice: set[str] = set()
    for value in values:
        (twice if value in seen else seen).add(value)
    return twice


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _tag_operations(tags: list[str], operations: dict[str, list[str]]) -> list[str]:
    """The spec's order: remove, then add, then set (which, when given, overrides both)."""
    if "set" in operations:
        return _unique(operations["set"])
    removed = set(operations.get("remove", []))
    return _unique([*(tag for tag in tags if tag not in removed), *operations.get("add", [])])


# -- CSV cells: the export writes them, the upload reads them back -------------------------------------------
# The spec gives one example (`rec-1,"What is 2+2?","4",{},""`) and no rule. The rule here:
# - a cell that parses as (strict) JSON is that JSON value, otherwise it is the plain string; an empty cell
#   is null. So the export writes a string as it is, unless it would read back as something else ("4",
#   "true", "", '"quoted"'): then it writes it JSON-encoded. Everything else is written as compact JSON.
# - `id` is never decoded: the cell is the id (empty: the upload makes one).
# - `tags`: a JSON array of strings, or a comma-separated list; empty: no tags. The export writes a JSON
#   array (empty cell for no tags).


def _strict_json(text: str) -> tuple[bool, Any]:
    """(True, value) when `text` is JSON (NaN and Infinity are not), else (False, None)."""

    def refuse(constant: str) -> Any:
        raise ValueError(constant)

    try:
        return True, json.loads(text, parse_constant=refuse)
    except (ValueError, RecursionError):
        return False, None


def _read_cell(text: str) -> Any:
    if text == "":
        return None
    parsed, value = _strict_json(text)
    return value if parsed else text


def _write_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str) and value and not _strict_json(value)[0]:
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _read_tags(text: str) -> list[str]:
    if not text.strip():
        return []
    if text.lstrip().startswith("["):
        parsed, tags = _strict_json(text)
        if not parsed or _tags_problem(tags, "tags"):
            raise ValueError("tags must be a JSON array of non-empty strings or a comma-separated list")
        return list(tags)
    return [tag.strip() for tag in text.split(",") if tag.strip()]


def _csv_text(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)  # the spec's example ends its lines with \n
    return out.getvalue()


def _flag(query: dict[str, list[str]], name: str, default: bool) -> bool:
    """A boolean query parameter, as Datadog's client sends one (true or false), given at most once."""
    values = query.get(name)
    if not values:
        return default
    if len(values) > 1 or values[0] not in ("true", "false"):
        raise ValueError(f"{name} must be given once, as true or false")
    return values[0] == "true"


def _multipart_file(content_type: str, raw: bytes) -> tuple[bytes | None, str | None]:
    """The content of a multipart/form-data body's single `file` part, or why there is none."""
    header = Message()
    header["Content-Type"] = content_type
    boundary = header.get_param("boundary")
    if header.get_content_type() != "multipart/form-data" or not isinstance(boundary, str) or not boundary:
        return None, "the body must be multipart/form-data (with a boundary)"
    delimiter = b"--" + boundary.encode("latin-1")
    if not raw.startswith(delimiter):
        return None, "the multipart body does not start with its boundary"
    parts, rest = [], raw[len(delimiter) :]
    while not rest.startswith(b"--"):  # the closing delimiter
        end = rest.find(b"\r\n" + delimiter)
        if not rest.startswith(b"\r\n") or end < 0:
            return None, "the multipart body is malformed (no closing boundary)"
        parts.append(rest[2:end])
        rest = rest[end + 2 + len(delimiter) :]
    if len(parts) != 1:
        return None, f"the upload takes a single file part, not {len(parts)} parts"
    head, separator, content = parts[0].partition(b"\r\n\r\n")
    if not separator:
        return None, "the multipart part has no headers"
    headers = BytesHeaderParser().parsebytes(head + b"\r\n\r\n")
    if headers.get_content_disposition() != "form-data" or headers.get_param("name", header="content-disposition") != (
        "file"
    ):
        return None, "the upload's part must be form-data named file"
    return content, None


def _event(name: str, data: dict[str, Any]) -> bytes:
    """One Server-Sent Event: its name and a JSON body on one data line."""
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


@dataclass
class _Upload:
    """What reading an uploaded CSV came to: the events so far, the records, and the error that ended it."""

    records: list[dict[str, Any]]
    events: list[bytes] = field(default_factory=list)
    created: int = 0
    written: int = 0
    error: str | None = None


def _ingest(
    existing: list[dict[str, Any]], file: bytes, *, deduplicate: bool, overwrite: bool, tags: list[str], stamp: str
) -> _Upload:
    """An uploaded CSV applied to a copy of `existing`, row by row, with a `progress` event every 1000 rows.

    The progress body is {"records_written": n} (records created or overwritten so far): the spec names the
    event but not its fields. A row whose id names an existing record replaces it (`overwrite`, the default;
    its created_at kept) or ends the upload with an error (overwrite=false); an id twice in one file is an
    error. `deduplicate` skips a row whose input equals a record's input (those written earlier in the same
    upload included). `records_created` counts new records only, not overwritten or skipped rows.
    """
    upload = _Upload([copy.deepcopy(record) for record in existing])
    try:
        text = file.decode("utf-8-sig")
    except UnicodeDecodeError:
        upload.error = "the file is not UTF-8 text"
        return upload
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            upload.error = "the file is empty: it needs a header with an input column"
            return upload
        unknown = [name for name in header if name not in CSV_COLUMNS]
        if unknown or len(set(header)) != len(header) or "input" not in header:
            upload.error = f"the header must name an input column and only {', '.join(CSV_COLUMNS)}, each once"
            return upload
        position = {record["id"]: number for number, record in enumerate(upload.records)}
        inputs = {_canonical(record.get("input")) for record in upload.records}
        seen: set[str] = set()
        for rows, row in enumerate(reader, start=1):
            line = reader.line_num
            if len(row) != len(header):
                upload.error = f"line {line}: {len(row)} cells where the header has {len(header)}"
                return upload
            cells = dict(zip(header, row, strict=True))
            if cells["input"] == "":
                upload.error = f"line {line}: the input is empty"
                return upload
            metadata = _read_cell(cells.get("metadata", ""))
            if metadata is not None and not isinstance(metadata, dict):
                upload.error = f"line {line}: metadata must be a JSON object"
                return upload
            try:
                row_tags = _unique([*_read_tags(cells.get("tags", "")), *tags])
            except ValueError as refused:
                upload.error = f"line {line}: {refused}"
                return upload
            record_id = cells.get("id", "")
            if record_id in seen:
                upload.error = f"line {line}: id {record_id} appears twice in the file"
                return upload
            if record_id:
                seen.add(record_id)
            record = {
                "id": record_id or f"rec-{uuid.uuid4()}",
                "input": _read_cell(cells["input"]),
                "expected_output": _read_cell(cells.get("expected_output", "")),
                "metadata": metadata,
                "tags": row_tags,
                "created_at": stamp,
                "updated_at": stamp,
            }
            if record_id in position:
                if not overwrite:
                    upload.error = f"line {line}: a record with id {record_id} exists (overwrite=false)"
                    return upload
                record["created_at"] = upload.records[position[record_id]].get("created_at", stamp)
                upload.records[position[record_id]] = record
                upload.written += 1
            elif deduplicate and _canonical(record["input"]) in inputs:
                pass  # skipped: its input is in the dataset already
            else:
                position[record["id"]] = len(upload.records)
                upload.records.append(record)
                upload.created += 1
                upload.written += 1
            inputs.add(_canonical(record["input"]))
            if rows % UPLOAD_PROGRESS_EVERY == 0:
                upload.events.append(_event("progress", {"records_written": upload.written}))
    except csv.Error as malformed:
        upload.error = f"line {reader.line_num}: {malformed}"
    return upload


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
