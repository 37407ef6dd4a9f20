"""Datadog calls as actions make them: only with time left, their answers awaited no longer than the deadline
allows, one refetch of the keys when Datadog refuses them, a rate-limit window that resets soon waited for
here rather than in the queue, and listings read page by page up to a cap."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Protocol, TypeVar

from llmobs_actions.attempts import Attempt
from llmobs_actions.aws_clients import OutOfTimeError
from llmobs_actions.datadog import MAX_PAGES, DatadogHTTPError, DatadogKeys, RateLimit
from llmobs_actions.failures import AUTH_STATUSES, AuthRejectedError
from llmobs_actions.observability import logger

T = TypeVar("T")
# One Datadog call, given the keys and how long it may wait for its answer.
DatadogCall = Callable[[DatadogKeys, float | None], T]


class KeySource(Protocol):
    def current(self) -> DatadogKeys: ...
    def refresh(self, rejected: DatadogKeys) -> DatadogKeys: ...


class Listed(Protocol):
    """What a listing's item has: Datadog's datasets and experiments alike."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def created_at(self) -> str | None: ...
    @property
    def metadata(self) -> Mapping[str, object]: ...


L = TypeVar("L", bound=Listed)


class Calls:
    def __init__(self, keys: KeySource, max_throttle_wait_seconds: float) -> None:
        self._keys = keys
        self._max_wait = max_throttle_wait_seconds

    def call(self, attempt: Attempt, call: DatadogCall[T]) -> T:
        """One Datadog call; when its rate limit resets soon, wait for it here rather than in the queue.

        Returning a throttled message to the queue costs it a receive (maxReceiveCount) and leaves the
        window idle until it comes back; a short wait in the invocation does neither.
        """
        waited = 0.0
        while True:
            try:
                return self._call_once(attempt, call)
            except DatadogHTTPError as error:
                wait = error.rate_limit.reset_seconds if error.status == 429 else None
                if wait is None or waited + wait > self._max_wait or not attempt.has_time(wait):
                    raise
            pause = wait + random.uniform(0, 0.05)  # noqa: S311 (jitter, not crypto)
            time.sleep(pause)
            waited += pause

    def _call_once(self, attempt: Attempt, call: DatadogCall[T]) -> T:
        """One Datadog call: only with time left, its answer awaited no later than the deadline allows, and
        with one refetch of the keys on 401/403."""
        if not attempt.has_time(0):
            raise OutOfTimeError("too little Lambda time left to start a Datadog call")
        keys = self._keys.current()
        try:
            return call(keys, attempt.read_timeout())
        except DatadogHTTPError as refused:
            if refused.status not in AUTH_STATUSES:
                raise
            logger.warning("Datadog refused the keys; refetching the secret once", extra={"status": refused.status})
        fresh = self._keys.refresh(keys)
        if not attempt.has_time(0):
            raise OutOfTimeError("too little Lambda time left to retry the Datadog call with fresh keys")
        try:
            return call(fresh, attempt.read_timeout())
        except DatadogHTTPError as error:
            if error.status in AUTH_STATUSES:
                raise AuthRejectedError(error.status, error.detail) from None
            raise

    def every_page(
        self, attempt: Attempt, page: Callable[[str | None, DatadogKeys, float | None], tuple[list[L], str | None]]
    ) -> list[L]:
        """Every item of a listing, each once (an item listed again on a later page while the list changed)."""
        seen: set[str] = set()
        items: list[L] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            found, cursor = self.call(attempt, partial(page, cursor))
            for item in found:
                if item.id not in seen:
                    seen.add(item.id)
                    items.append(item)
            if cursor is None:
                return items
        raise DatadogHTTPError("list", 400, f"more than {MAX_PAGES} pages: the listing never ends", RateLimit())
