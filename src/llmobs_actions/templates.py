"""Name templates: `{date}`, `{datetime}`, `{event_time:FORMAT}` and `{source_name}` in clone names."""

from __future__ import annotations

import string
from collections.abc import Callable
from datetime import UTC, datetime

PLACEHOLDERS = ("date", "datetime", "event_time", "source_name")
_FORMATTER = string.Formatter()


class TemplateError(ValueError):
    """The text uses a placeholder, a format or a brace that is not supported."""


def placeholders(text: str) -> set[str]:
    """The placeholders `text` uses; raises TemplateError for anything unsupported."""
    try:
        parsed = list(_FORMATTER.parse(text))
    except ValueError as error:
        raise TemplateError(f"bad template {text!r}: {error}") from None
    used = set()
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in PLACEHOLDERS:
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            raise TemplateError(f"unknown placeholder {{{field}}}; known: {known}")
        if conversion:
            raise TemplateError(f"{{{field}!{conversion}}}: conversions are not supported")
        if spec and field != "event_time":
            raise TemplateError(f"{{{field}:{spec}}}: only {{event_time}} takes a format")
        if spec:
            _check_time_format(spec)
        used.add(field)
    return used


def render(text: str, event_time: datetime, source_name: Callable[[], str]) -> str:
    """Fill the placeholders; `source_name` is called (a Datadog read) only when the text uses it."""
    used = placeholders(text)
    moment = event_time.astimezone(UTC)
    values: dict[str, object] = {
        "date": moment.strftime("%Y-%m-%d"),
        "datetime": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "event_time": moment,
    }
    if "source_name" in used:
        values["source_name"] = source_name()
    return text.format_map(values)


def _check_time_format(spec: str) -> None:
    try:
        rendered = format(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), spec)
    except ValueError as error:
        raise TemplateError(f"bad time format {spec!r}: {error}") from None
    if rendered == spec and "%" not in spec:
        raise TemplateError(f"time format {spec!r} has no % directive")
