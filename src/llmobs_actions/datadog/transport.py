"""The HTTP transport to Datadog: one urllib3 pool, bounded timeouts, no blind retries, the rate budget, traces
and metrics. The endpoints are in client.py and datasets.py."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from importlib.metadata import version
from urllib.parse import quote, urlencode

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from llmobs_actions import __version__
from llmobs_actions.datadog.answers import (
    DatadogKeys,
    _Answer,
    _error_detail,
    _json_or_text,
)
from llmobs_actions.datadog.errors import DatadogHTTPError, DatadogNoAnswerError, DatadogUnreachableError
from llmobs_actions.datadog.rate_budget import RateBudget, RateLimit

API_PREFIX = "/api/v2/llm-obs/v1"
USER_AGENT = f"llmobs-actions/{__version__} (python {platform.python_version()}; urllib3 {version('urllib3')})"

# (operation name, HTTP status or None when no answer came, elapsed milliseconds)
CallObserver = Callable[[str, int | None, float], None]
# (operation name, method, URL) -> a context around the call, yielding what records the answer's status
CallTracer = Callable[[str, str, str], AbstractContextManager[Callable[[int | None], None]]]


class Transport:
    """One urllib3 pool to Datadog: bounded timeouts, no blind retries, the rate budget, traces and metrics."""

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        max_connections: int = 10,
        observer: CallObserver | None = None,
        tracer: CallTracer | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        # Retries are the queue's job: a blind retry of a clone POST could make a second copy.
        self._pool = urllib3.PoolManager(
            num_pools=2,
            maxsize=max_connections,
            retries=False,
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
        )
        self._observer = observer
        self._tracer = tracer
        self._connect_timeout, self._read_timeout = connect_timeout, read_timeout
        self.rate_budget = RateBudget()

    def _timeout(self, read_cap: float | None) -> urllib3.Timeout:
        """The configured timeouts, the read one cut to `read_cap` (what the Lambda deadline leaves)."""
        read = self._read_timeout if read_cap is None else min(self._read_timeout, read_cap)
        return urllib3.Timeout(connect=self._connect_timeout, read=read)

    def throttled_for(self, operation: str) -> float | None:
        """Seconds until the window of `operation`'s rate limit resets, when Datadog's answers say it is used up."""
        return self.rate_budget.wait_seconds(operation, time.monotonic())

    def _call(
        self,
        operation: str,
        method: str,
        path: str,
        keys: DatadogKeys,
        *,
        body: object | None = None,
        query: Mapping[str, str] | None = None,
        read_timeout: float | None = None,
        payload: bytes | None = None,
        content_type: str | None = None,
        api_prefix: str = API_PREFIX,
        accept: str = "application/json",
    ) -> _Answer:
        url = f"{self._base_url}{api_prefix}{path}"
        if query:
            url = f"{url}?{urlencode(query)}"
        headers = {
            "DD-API-KEY": keys.api_key,
            "DD-APPLICATION-KEY": keys.app_key,
            "Accept": accept,
            "User-Agent": USER_AGENT,
        }
        wait = self.rate_budget.wait_seconds(operation, time.monotonic(), reserve=True)
        if wait is not None:
            raise DatadogHTTPError(operation, 429, "rate limit used up (not sent)", RateLimit(reset_seconds=wait))
        if body is not None:
            headers["Content-Type"] = "application/json"
            payload = json.dumps(body, separators=(",", ":")).encode()
        elif payload is not None and content_type is not None:
            headers["Content-Type"] = content_type
        started = time.perf_counter()
        status: int | None = None
        try:
            with self._tracer(operation, method, url) if self._tracer else nullcontext(_ignore) as answered:
                response = self._pool.request(
                    method, url, body=payload, headers=headers, redirect=False, timeout=self._timeout(read_timeout)
                )
                answered(response.status)
            status = response.status
        except (NewConnectionError, ConnectTimeoutError, SSLError) as error:
            # SSLError: the TLS handshake failed (an untrusted certificate, say), so nothing was sent.
            raise DatadogUnreachableError(
                operation, f"{operation}: could not connect to Datadog ({type(error).__name__})"
            ) from None
        except (ReadTimeoutError, ProtocolError) as error:
            raise DatadogNoAnswerError(
                operation, f"{operation}: no answer from Datadog ({type(error).__name__})"
            ) from None
        except HTTPError as error:
            raise DatadogNoAnswerError(
                operation, f"{operation}: request to Datadog failed ({type(error).__name__})"
            ) from None
        finally:
            if self._observer is not None:
                self._observer(operation, status, (time.perf_counter() - started) * 1000)
        self.rate_budget.observe(
            operation, RateLimit.from_headers(response.headers), time.monotonic(), time.time(), response.status != 429
        )
        parsed = (
            _json_or_text(response.data) if accept == "application/json" else response.data.decode("utf-8", "replace")
        )
        if 200 <= response.status < 300:
            return _Answer(response.status, parsed, response.headers)
        raise DatadogHTTPError(
            operation, response.status, _error_detail(parsed), RateLimit.from_headers(response.headers)
        )


def _ignore(status: int | None) -> None:
    pass


def segment(value: str) -> str:
    # Ids are validated by the contract already; quoting again costs nothing and keeps the path whole.
    return quote(value, safe="")
