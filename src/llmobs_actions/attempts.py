"""Attempts: what one try of an action knows (its time, the tries under its key that came before) and what it
reports. Shared by the actions, the idempotency record that remembers tries, and the processing that runs them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime


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


@dataclass(frozen=True)
class Attempt:
    """What this try knows: how much time it has, and the tries under its key that came before."""

    has_time: Callable[[float], bool]  # time left to start a call after waiting this many seconds?
    read_timeout: Callable[[], float | None] = lambda: None  # how long a call started now may wait for its answer
    event_time: datetime | None = None  # what name templates call {event_time}; None: now
    earlier: tuple[EarlierAttempt, ...] = ()
    progress: Progress = field(default_factory=Progress)  # shared by the copies `after` makes

    @property
    def may_have_run_before(self) -> bool:
        """Whether an earlier try may have done part of this one's work (a delete may find ids gone)."""
        return any(attempt.may_have_acted for attempt in self.earlier)

    def after(self, earlier: tuple[EarlierAttempt, ...]) -> Attempt:
        return replace(self, earlier=self.earlier + earlier)


@dataclass(frozen=True)
class ActionResult:
    summary: str
    details: dict[str, object] = field(default_factory=dict)
