"""The rate budget: what Datadog's X-RateLimit-* headers say is left of each limit's window, kept so that the
client never sends into a window it knows is used up.

- Datadog's limits differ per endpoint and every answer names its limit (X-RateLimit-Name): one window per
  name. Each operation learns from its own answers which name it counts against; an operation never
  answered yet is held back by nothing, and one limit used up holds back no operation of another.
- Within a window the count only goes down: an answer overtaken by later requests says more is left than
  is, so the lower count wins.
- Windows are calendar-aligned: a window's end is the multiple of its period nearest to what the whole-second
  X-RateLimit-Reset says, so a window rolled forward lines up with Datadog's own.
- When a window of known size resets, the next one starts counted: full, or, when the one before was used
  up with only part of it ours (other sandboxes share the limit), at our share, so its first burst does not
  overshoot.
- Sending into an exhausted window only earns 429s; the client stops itself until the window resets
  instead, and the caller treats that as a 429 that cost no request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass


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


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _integer(value: str | None) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None
