"""Adoption: the dataset an earlier attempt under the same key made, when its answer was lost, is taken for
this attempt's instead of cloning again; only a dataset that attempt can have made."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import TypeGuard

from llmobs_actions.actions.base import Tools
from llmobs_actions.attempts import Attempt, EarlierAttempt
from llmobs_actions.datadog import DatadogKeys, DatasetSummary
from llmobs_actions.messages import parse_timestamp

# Clocks of Lambda and Datadog disagree a little: a dataset created up to this much outside an attempt's
# window may still be the one it made.
CLOCK_SKEW = timedelta(minutes=2)


def earlier_clone(attempt: Attempt, tools: Tools) -> DatasetSummary | None:
    """The dataset an earlier attempt under this key made, if one may have: exactly the name it asked for, in
    its project, created while it could have been at work. Only such a dataset can be its; any other of the
    same name is someone else's, and is never adopted."""
    found: list[tuple[datetime, DatasetSummary]] = []
    for earlier in attempt.earlier:
        if not earlier.may_have_acted or earlier.name is None:
            continue
        named = partial(_named_in, tools, earlier.target, earlier.name)
        for candidate in tools.calls.call(attempt, named):
            created = parse_timestamp(candidate.created_at)
            if _made_during(created, earlier):
                found.append((created, candidate))
    return min(found, key=lambda pair: pair[0])[1] if found else None


def _named_in(
    tools: Tools, project_id: str, name: str, keys: DatadogKeys, read_timeout: float | None
) -> list[DatasetSummary]:
    return tools.datadog.find_datasets_by_name(keys, project_id, name, read_timeout=read_timeout)


def _made_during(created: datetime | None, earlier: EarlierAttempt) -> TypeGuard[datetime]:
    """Whether a dataset created then can be the one `earlier` made."""
    return created is not None and earlier.started_at - CLOCK_SKEW <= created <= earlier.until + CLOCK_SKEW
