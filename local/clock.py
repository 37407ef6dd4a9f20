"""A wall clock a test controls: `time.time()` moved by an offset the test sets, everything else unchanged.

Datadog's rate-limit windows are calendar-aligned, and so is the function's budget of them: a test about a
window must not depend on where the real clock stands in the minute. Give the emulator this clock and put it
in place of the `time` module the function's Datadog client reads; both then agree the minute starts when the
test says, and time still flows (monotonic clocks, sleeps and timeouts are the real ones).
"""

from __future__ import annotations

import time
from typing import Any


class ShiftedClock:
    def __init__(self, offset_seconds: float = 0.0) -> None:
        self.offset_seconds = offset_seconds

    @classmethod
    def at_second(cls, second: float, period: int = 60) -> ShiftedClock:
        """A clock that reads `second` seconds into a calendar-aligned period (a minute by default) now."""
        return cls(second - time.time() % period)

    def time(self) -> float:
        return time.time() + self.offset_seconds

    def __getattr__(self, name: str) -> Any:  # monotonic, perf_counter, sleep, ...: the real ones
        return getattr(time, name)
