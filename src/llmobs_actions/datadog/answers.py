"""Datadog's answers, read defensively (every endpoint is preview): the summaries the actions use, and the
helpers that take JSON:API bodies apart without trusting their shape."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from llmobs_actions.datadog.errors import DatadogHTTPError
from llmobs_actions.datadog.rate_budget import RateLimit

_MAX_DETAIL_CHARS = 500
# A listing that pages on past this (100 a page) is going round in circles, not listing a real project.
MAX_PAGES = 1000
T = TypeVar("T")


@dataclass(frozen=True)
class DatadogKeys:
    api_key: str
    app_key: str = field(repr=False)

    def __repr__(self) -> str:  # keys must never reach a log line, even through repr()
        return "DatadogKeys(api_key=****, app_key=****)"


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
class DatasetVersion:
    number: int
    last_used: str | None  # ISO 8601; None when the version was never used


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


def _dataset_summaries(body: Any) -> list[DatasetSummary]:
    """The datasets a listing names (id and name required), with what each says of itself."""
    found = []
    for item in _items(body):
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
    return found
