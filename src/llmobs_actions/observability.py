"""Observability: the Powertools logger, metrics and tracer every module shares."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice

SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME", "llmobs-actions")
METRICS_NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "LLMObsActions")

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
Handler = TypeVar("Handler", bound=Callable[..., Any])
# botocore only: every AWS call. (X-Ray's httplib patch would not see the Datadog calls: urllib3 2 sends
# without http.client's _send_request; `trace_datadog_call` records those.) Patching all 13 modules the
# SDK knows costs ~70 ms of the cold start for nothing.
TRACED_MODULES = ("botocore",)
_recorder: Any = None  # X-Ray's recorder, once the first invocation built an enabled Tracer

# botocore logs whole responses at DEBUG, GetSecretValue's included: keys must never reach a log,
# whatever log level the function, the Lambda runtime or a test harness sets on the root logger.
for _library in ("botocore", "boto3"):
    logging.getLogger(_library).setLevel(logging.WARNING)


def traced(handler: Handler) -> Handler:
    """Powertools Tracer (X-Ray, responses not captured), built at the first invocation rather than at import.

    Importing the X-Ray SDK costs about a third of the cold start; a function with tracing turned off
    (POWERTOOLS_TRACE_DISABLED) then never pays it, and one with tracing on pays it once, as before.
    """
    wrapped: Callable[..., Any] | None = None

    @functools.wraps(handler)
    def invoke(event: Any, context: Any) -> Any:
        nonlocal wrapped
        if wrapped is None:
            disabled = resolve_truthy_env_var_choice(env=os.environ.get("POWERTOOLS_TRACE_DISABLED", "false"))
            if disabled:
                wrapped = handler
            else:
                from aws_lambda_powertools import Tracer

                global _recorder
                tracer = Tracer(service=SERVICE_NAME, patch_modules=TRACED_MODULES)
                _recorder = None if tracer.disabled else tracer.provider
                wrapped = tracer.capture_lambda_handler(handler, capture_response=False)
        return wrapped(event, context)

    return invoke  # type: ignore[return-value]


_metrics_lock = threading.Lock()  # records run on a thread pool; Powertools' metric set is shared


def count(name: str, value: float = 1) -> None:
    with _metrics_lock:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def count_with_dimension(name: str, dimension: str, dimension_value: str) -> None:
    with (
        _metrics_lock,
        single_metric(
            name=name,
            unit=MetricUnit.Count,
            value=1,
            namespace=METRICS_NAMESPACE,
            default_dimensions={"service": SERVICE_NAME},
        ) as metric,
    ):
        metric.add_dimension(name=dimension, value=dimension_value)


@contextlib.contextmanager
def trace_datadog_call(operation: str, method: str, url: str) -> Iterator[Callable[[int | None], None]]:
    """An X-Ray subsegment for one Datadog call, named after the host as X-Ray names remote calls; yields
    what records the answer's status. Nothing when tracing is off. The keys travel in headers, never traced."""
    recorder = _recorder
    if recorder is None:
        yield lambda status: None
        return
    parts = urlsplit(url)
    with recorder.in_subsegment(parts.hostname or "datadog") as subsegment:
        subsegment.namespace = "remote"
        subsegment.put_annotation("operation", operation)
        subsegment.put_http_meta("method", method)
        subsegment.put_http_meta("url", f"{parts.scheme}://{parts.netloc}{parts.path}")

        def answered(status: int | None) -> None:
            if status is not None:
                subsegment.put_http_meta("status", status)

        yield answered


def observe_datadog_call(operation: str, status: int | None, elapsed_ms: float) -> None:
    with _metrics_lock:
        metrics.add_metric(name="DatadogLatency", unit=MetricUnit.Milliseconds, value=round(elapsed_ms, 1))
    logger.debug("datadog call", extra={"operation": operation, "status": status, "elapsed_ms": round(elapsed_ms, 1)})
