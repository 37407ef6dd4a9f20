"""Name templates for clones: each placeholder, unknown ones, formats and time zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from llmobs_actions.contract import InvalidAction, parse_action
from llmobs_actions.templates import TemplateError, placeholders, render
from tests.conftest import clone_action

MOMENT = datetime(2026, 11, 22, 3, 4, 5, tzinfo=UTC)


def no_lookup() -> str:
    raise AssertionError("the source name must not be fetched when the text does not use it")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("golden-{date}", "golden-2026-11-22"),
        ("golden {datetime}", "golden 2026-11-22T03:04:05Z"),
        ("golden-{event_time:%Y-%m-%d}", "golden-2026-11-22"),
        ("week {event_time:%G-W%V}", "week 2026-W47"),
        ("{event_time:%H:%M}", "03:04"),
        ("plain name", "plain name"),
        ("braces {{kept}}", "braces {kept}"),
    ],
)
def test_each_placeholder(text: str, expected: str) -> None:
    assert render(text, MOMENT, no_lookup) == expected


def test_the_source_name_is_fetched_only_when_used() -> None:
    calls: list[str] = []

    def lookup() -> str:
        calls.append("fetched")
        return "golden"

    assert render("{source_name}-{date}", MOMENT, lookup) == "golden-2026-11-22"
    assert calls == ["fetched"]


def test_times_are_rendered_in_utc_whatever_the_zone_they_come_in() -> None:
    tokyo = MOMENT.astimezone(timezone(timedelta(hours=9)))  # 12:04 on the same day in Tokyo
    late_evening = datetime(2026, 11, 21, 23, 30, tzinfo=timezone(timedelta(hours=-5)))  # 04:30Z on the 22nd
    assert render("{event_time:%H}", tokyo, no_lookup) == "03"
    assert render("{date}", late_evening, no_lookup) == "2026-11-22"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("golden-{today}", "unknown placeholder {today}"),
        ("golden-{date:%Y}", "only {event_time} takes a format"),
        ("golden-{date!r}", "conversions are not supported"),
        ("golden-{", "bad template"),
        ("golden-}", "bad template"),
        ("{event_time:YYYY}", "has no % directive"),
    ],
)
def test_unsupported_templates_are_refused(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace("{", r"\{").replace("}", r"\}")):
        placeholders(text)


def test_the_contract_refuses_unknown_placeholders_as_invalid_input() -> None:
    with pytest.raises(InvalidAction, match=r"clone_dataset.name: Value error, unknown placeholder \{nightly\}"):
        parse_action(clone_action(name="golden-{nightly}"))
    with pytest.raises(InvalidAction, match=r"clone_dataset\.description"):
        parse_action(clone_action(description="made {when}"))
    assert parse_action(clone_action(name="golden-{date}", description="from {source_name}"))
