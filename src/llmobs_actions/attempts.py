"""Attempts: what one try of an action knows (its time, the tries under its key that came before) and what it
reports. Shared by the actions, the idempotency record that remembers tries, and the processing that runs them."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Intent:
    """What an attempt is about to do, as later deliveries must know it: where, and under which name."""

    target: str = ""  # the project (or "" for an action on experiments alone)
    name: str | None = None  # the dataset a clone makes


@dataclass(frozen=True)
class EarlierAttempt:
    """A try under the same key that never completed: what it asked for, and when it could have acted."""

    started_at: datetime
    until: datetime  # when it ended; if it never said (its sandbox died), its invocation's deadline
    target: str
    name: str | None
    may_have_acted: bool  # False only when it said its request cannot have taken effect


@dataclass
class Progress:
    """What a try has done so far, for the record of it if it fails: a later try must know."""

    changed: bool = False  # one of its requests changed something in Datadog (a chunk deleted, say)
    # Long work's place so far (export parts, import chunks): kept on the key if the try fails, so the next
    # one resumes there instead of starting over.
    checkpoint: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Attempt:
    """What this try knows: how much time it has, and the tries under its key that came before."""

    has_time: Callable[[float], bool]  # time left to start a call after waiting this many seconds?
    read_timeout: Callable[[], float | None] = lambda: None  # how long a call started now may wait for its answer
    event_time: datetime | None = None  # what name templates call {event_time}; None: now
    earlier: tuple[EarlierAttempt, ...] = ()
    progress: Progress = field(default_factory=Progress)  # shared by the copies `after` makes
    seconds_left: Callable[[], float] = lambda: math.inf  # of the invocation, for calls that are not Datadog's
    # Where long work (an export, an import) stopped in an earlier invocation under this key: it resumes there.
    checkpoint: Mapping[str, Any] | None = None

    @property
    def may_have_run_before(self) -> bool:
        """Whether an earlier try may have done part of this one's work (a delete may find ids gone)."""
        return any(attempt.may_have_acted for attempt in self.earlier)

    def after(self, earlier: tuple[EarlierAttempt, ...], checkpoint: Mapping[str, Any] | None = None) -> Attempt:
        return replace(self, earlier=self.earlier + earlier, checkpoint=checkpoint or self.checkpoint)


class ContinueLater(Exception):
    """Long work stops before the invocation's deadline: `checkpoint` (JSON) says where the next one resumes,
    and the message comes back as a continuation under the same key. The producer hears only of the end."""

    def __init__(self, checkpoint: Mapping[str, Any], done_so_far: str) -> None:
        super().__init__(done_so_far)
        self.checkpoint = dict(checkpoint)
        self.done_so_far = done_so_far


@dataclass(frozen=True)
class ActionResult:
    summary: str
    details: dict[str, object] = field(default_factory=dict)
