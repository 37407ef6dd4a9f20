"""Datadog LLM Observability HTTP client: the few llm-obs endpoints we call, over one urllib3 pool."""

from __future__ import annotations

import json
import platform
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any, TypeVar
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

API_PREFIX = "/api/v2/llm-obs/v1"
USER_AGENT = f"llmobs-actions/{__version__} (python {platform.python_version()}; urllib3 {version('urllib3')})"
_MAX_DETAIL_CHARS = 500
# A listing that pages on past this (100 a page) is going round in circles, not listing a real project.
MAX_PAGES = 1000
T = TypeVar("T")

# (operation name, HTTP status or None when no answer came, elapsed milliseconds)
CallObserver = Callable[[str, int | None, float], None]
# (operation name, method, URL) -> a context around the call, yielding what records the answer's status
CallTracer = Callable[[str, str, str], AbstractContextManager[Callable[[int | None], None]]]


@dataclass(frozen=True)
class DatadogKeys:
    api_key: str
    app_key: str = field(repr=False)

    def __repr__(self) -> str:  # keys must never reach a log line, even through repr()
        return "DatadogKeys(api_key=****, app_key=****)"


@dataclass(frozen=True)
class RateLimit:
    """The X-RateLimit-* headers Datadog sends (names are case-insensitive)."""

    limit: int | None = None
    period: int | None = None
    remaining: int | None = None
    reset_seconds: float | None = None
    name: str | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], now: float | None = None) -> RateLimit:
        lowered = {key.lower(): value for key, value in headers.items()}
        reset = _number(lowered.get("x-ratelimit-reset"))
        if reset is not None and reset > 1_000_000_000:
            # Some Datadog APIs send an epoch timestamp rather than seconds-until-reset.
            reset = max(0.0, reset - (time.time() if now is None else now))
        return cls(
            limit=_integer(lowered.get("x-ratelimit-limit")),
            period=_integer(lowered.get("x-ratelimit-period")),
            remaining=_integer(lowered.get("x-ratelimit-remaining")),
            reset_seconds=reset,
            name=lowered.get("x-ratelimit-name"),
        )


@dataclass
class _Window:
    remaining: int
    resets_at: float
    limit: int | None
    period: int | None
    granted: int = 0  # our requests it answered without a 429
    exhausted: bool = False  # an answer said nothing was left


class RateBudget:
    """What Datadog's X-RateLimit-* headers say is left of each limit's current window, shared by every thread.

    Datadog's limits differ per endpoint and every answer names its limit (X-RateLimit-Name), so there is
    one window per name, and each operation learns from its own answers which limit it counts against:
    a clone's exhausted limit never holds back a delete, and an operation not yet answered is held back
    by nothing. Within a window the count only goes down: an answer that was overtaken by later requests
    reports more than is left, so the lower count wins. When a window whose limit and period are known
    resets, the next one starts counted, so that its first burst does not overshoot: full, or, when the
    window before was used up with only part of it ours (other sandboxes share the limit), at our share.

    Sending into an exhausted window only earns 429s and makes Datadog's limit the coordinator of
    concurrent invocations; with this the client stops itself until the window resets, and the message
    waits in its queue instead (the caller treats it as a 429 that cost no request).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._limit_of: dict[str, str] = {}  # operation -> limit name, as its answers said
        self._windows: dict[str, _Window] = {}

    def observe(
        self, operation: str, rate_limit: RateLimit, now: float, wall: float | None = None, granted: bool = True
    ) -> None:
        """Learn from an answer to `operation` (`granted`: not a 429); `now` is monotonic, `wall` the epoch time."""
        if rate_limit.remaining is None or rate_limit.reset_seconds is None:
            return
        name = rate_limit.name or f"operation:{operation}"  # an unnamed limit is the operation's own
        resets_at = now + rate_limit.reset_seconds
        if wall is not None and rate_limit.period and rate_limit.period >= 2:
            # Windows are calendar-aligned: the end is the multiple of the period nearest to what the
            # whole-second reset says, so that a window rolled forward lines up with Datadog's own.
            period = rate_limit.period
            boundary = round((wall + rate_limit.reset_seconds) / period) * period
            resets_at = now + (boundary - wall if boundary > wall else boundary + period - wall)
        with self._lock:
            self._limit_of[operation] = name
            window = self._windows.get(name)
            if window is not None and now < window.resets_at:
                drift = resets_at - window.resets_at
                if abs(drift) <= _same_window(window):
                    window.granted += granted
                    window.exhausted = window.exhausted or rate_limit.remaining == 0
                    if rate_limit.remaining <= window.remaining:  # the newest word on this window
                        window.remaining, window.resets_at = rate_limit.remaining, resets_at
                    return  # else an answer overtaken by later requests: it says more is left than is
                if drift < 0:
                    return  # an answer from a window already over
            self._windows[name] = _Window(
                rate_limit.remaining,
                resets_at,
                rate_limit.limit,
                rate_limit.period,
                granted=int(granted),
                exhausted=rate_limit.remaining == 0,
            )

    def wait_seconds(self, operation: str, now: float, reserve: bool = False) -> float | None:
        """None when `operation` may send now (and, with `reserve`, counts it); else the seconds to wait."""
        with self._lock:
            name = self._limit_of.get(operation)
            window = self._windows.get(name) if name is not None else None
            if window is None:
                return None  # nothing known of this operation's limit
            if now >= window.resets_at:
                if not (window.limit and window.period):
                    return None  # a new window of unknown size: the next answer tells
                elapsed = (now - window.resets_at) // window.period + 1
                shared = elapsed == 1 and window.exhausted and window.granted < window.limit
                window.resets_at += elapsed * window.period  # windows are calendar-aligned
                window.remaining = max(1, window.granted) if shared else window.limit
                window.granted, window.exhausted = 0, False
            if window.remaining > 0:
                if reserve:
                    window.remaining -= 1
                return None
            return window.resets_at - now


def _same_window(window: _Window) -> float:
    """How far two answers' resets may differ and still be one window: X-RateLimit-Reset counts whole seconds,
    and one window's end is a period away from the next's."""
    return window.period / 2 if window.period else 1.0


class DatadogError(Exception):
    """Any failure talking to Datadog."""


class DatadogHTTPError(DatadogError):
    """Datadog answered with a non-success status."""

    def __init__(self, operation: str, status: int, detail: str, rate_limit: RateLimit) -> None:
        super().__init__(f"{operation}: Datadog answered {status}" + (f": {detail}" if detail else ""))
        self.operation = operation
        self.status = status
        self.detail = detail
        self.rate_limit = rate_limit


class DatadogUnreachableError(DatadogError):
    """The request never reached Datadog (refused, DNS, connect timeout): safe to send again."""

    def __init__(self, operation: str, message: str) -> None:
        super().__init__(message)
        self.operation = operation


class DatadogNoAnswerError(DatadogError):
    """The request was sent but no answer arrived (read timeout, reset): it may have taken effect."""

    def __init__(self, operation: str, message: str) -> None:
        super().__init__(message)
        self.operation = operation


@dataclass(frozen=True)
class ClonedDataset:
    id: str | None
    name: str | None
    current_version: int | None
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetSummary:
    id: str
    name: str
    created_at: str | None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    current_version: int | None = None


@dataclass(frozen=True)
class ExperimentSummary:
    id: str
    name: str
    created_at: str | None
    dataset_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProjectSummary:
    id: str
    name: str


@dataclass(frozen=True)
class _Answer:
    status: int
    body: Any
    headers: Mapping[str, str]


class DatadogClient:
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


def _ignore(status: int | None) -> None:
    pass


def _segment(value: str) -> str:
    # Ids are validated by the contract already; quoting again costs nothing and keeps the path whole.
    return quote(value, safe="")


def _cloned_dataset(body: Any) -> ClonedDataset:
    data = body.get("data") if isinstance(body, dict) else None
    attributes = data.get("attributes") if isinstance(data, dict) else None
    new_id = data.get("id") if isinstance(data, dict) else None
    name = attributes.get("name") if isinstance(attributes, dict) else None
    version = attributes.get("current_version") if isinstance(attributes, dict) else None
    new_id = new_id if isinstance(new_id, str) else None
    version = version if isinstance(version, int) and not isinstance(version, bool) else None
    missing = tuple(
        label for label, value in (("data.id", new_id), ("data.attributes.current_version", version)) if value is None
    )
    return ClonedDataset(new_id, name if isinstance(name, str) else None, version, missing)


def _every_page(page: Callable[[str | None], tuple[list[T], str | None]], keep: Callable[[T], bool]) -> list[T]:
    found: list[T] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        items, cursor = page(cursor)
        found += [item for item in items if keep(item)]
        if cursor is None:
            return found
    raise DatadogHTTPError("list", 400, f"more than {MAX_PAGES} pages: the listing never ends", RateLimit())


def _attributes_of(item: Mapping[str, Any]) -> Mapping[str, Any]:
    attributes = item.get("attributes")
    return attributes if isinstance(attributes, dict) else {}


def _text(attributes: Mapping[str, Any], name: str) -> str | None:
    value = attributes.get(name)
    return value if isinstance(value, str) else None


def _metadata(attributes: Mapping[str, Any]) -> Mapping[str, Any]:
    value = attributes.get("metadata")  # nullable in Datadog's spec
    return value if isinstance(value, dict) else {}


def _next_cursor(body: Any) -> str | None:
    meta = body.get("meta") if isinstance(body, dict) else None
    after = meta.get("after") if isinstance(meta, dict) else None
    return after if isinstance(after, str) and after else None


def _items(body: Any) -> list[dict[str, Any]]:
    data = body.get("data") if isinstance(body, dict) else None
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


def _json_or_text(data: bytes) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return data[:_MAX_DETAIL_CHARS].decode("utf-8", errors="replace")


def _error_detail(body: Any) -> str:
    """Flatten both Datadog error shapes: {"errors": ["..."]} and JSON:API {"errors": [{title, detail}]}."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return body.strip()[:_MAX_DETAIL_CHARS] if isinstance(body, str) else ""
    parts = []
    for error in errors[:5]:
        if isinstance(error, dict):
            text = ": ".join(str(error[k]) for k in ("title", "detail") if error.get(k))
            parts.append(text or json.dumps(error)[:200])
        else:
            parts.append(str(error))
    return "; ".join(parts)[:_MAX_DETAIL_CHARS]


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _integer(value: str | None) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None
