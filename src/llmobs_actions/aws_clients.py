"""The AWS clients of one execution environment, all made from one boto3 session, at their first use, and the
bounds that keep every AWS call inside the invocation's one deadline.

botocore caches what it loads (service models, endpoint rulesets, partitions) per session: a client made
from a session of its own costs 60-90 ms more at a cold start than one from a session already used.
Secrets Manager, DynamoDB (idempotency), SQS and EventBridge therefore share one session here, and each
client is made only when a record first needs it.

A call's worst case is attempts x (connect + read), plus botocore's back-off between attempts (standard mode:
at most 1 s, then 2 s, ... when throttled). `within` gives a client whose worst case fits the time
left: the call's usual bounds when they fit, else shorter reads, else a single attempt, else none at all (the
caller then leaves the message to its retry: Lambda must never kill the sandbox at the deadline).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Read timeouts a bounded call may be cut to, longest first; one client per step, made at its first use.
_READ_STEPS = (10.0, 5.0, 3.0, 2.0, 1.0, 0.5, 0.25)
_SHORTEST_CONNECT = 0.25


@dataclass(frozen=True)
class Bounds:
    """How long one AWS call may take: its timeouts and tries."""

    connect_timeout: float
    read_timeout: float
    max_attempts: int

    @property
    def worst_case_seconds(self) -> float:
        backoff = float(2 ** (self.max_attempts - 1) - 1)  # botocore's standard mode, throttled: 1 s, then 2 s, ...
        return self.max_attempts * (self.connect_timeout + self.read_timeout) + backoff

    def within(self, seconds: float) -> Bounds | None:
        """These bounds, or the nearest shorter ones whose worst case fits `seconds`; None if none fits."""
        if self.worst_case_seconds <= seconds:
            return self
        for attempts in range(self.max_attempts, 0, -1):
            for read in (step for step in _READ_STEPS if step < self.read_timeout):
                connect = min(self.connect_timeout, max(_SHORTEST_CONNECT, read))
                candidate = Bounds(connect, read, attempts)
                if candidate.worst_case_seconds <= seconds:
                    return candidate
        return None


class AwsClients:
    def __init__(self, max_connections: int = 10) -> None:
        self._max_connections = max_connections  # one connection per record of a batch: none waits for another
        self._lock = threading.Lock()  # clients are thread-safe; making one (and the session) is not
        self._session: Any = None
        self._bounded: dict[tuple[str, Bounds], Any] = {}

    def client(self, service: str, *, connect_timeout: float, read_timeout: float, max_attempts: int) -> Any:
        """A new client with bounded calls: a slow AWS service must not eat the Lambda's time."""
        import boto3  # at the first use: the handler's import stays light
        from botocore.config import Config

        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            max_pool_connections=self._max_connections,
        )
        with self._lock:
            if self._session is None:
                self._session = boto3.session.Session()
            return self._session.client(service, config=config)

    def within(self, service: str, usual: Bounds, seconds_left: float) -> Any | None:
        """A client (kept for reuse) whose calls end within `seconds_left`; None when no call can."""
        bounds = usual.within(seconds_left)
        if bounds is None:
            return None
        with self._lock:
            known = self._bounded.get((service, bounds))
        if known is not None:
            return known
        made = self.client(
            service,
            connect_timeout=bounds.connect_timeout,
            read_timeout=bounds.read_timeout,
            max_attempts=bounds.max_attempts,
        )
        with self._lock:
            return self._bounded.setdefault((service, bounds), made)


class OutOfTimeError(Exception):
    """Too little of the invocation is left to make a call that must end before its deadline."""


RemainingMillis = Callable[[], int]
# What the handler keeps back of the invocation: its answer must reach Lambda before the deadline.
RESERVE_MILLIS = 300


@dataclass(frozen=True)
class Deadline:
    """The invocation's one deadline, as the Lambda context counts it down."""

    remaining_ms: RemainingMillis

    def seconds_left(self) -> float:
        return max(0.0, (self.remaining_ms() - RESERVE_MILLIS) / 1000)

    @classmethod
    def none(cls) -> Deadline:
        """No deadline to speak of (a caller outside an invocation)."""
        return cls(lambda: 15 * 60 * 1000)
