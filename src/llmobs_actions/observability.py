"""Observability: the Powertools logger, metrics and tracer every module shares."""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice

SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME", "llmobs-actions")
METRICS_NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "LLMObsActions")

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
Handler = TypeVar("Handler", bound=Callable[..., Any])
TRACED_MODULES = ("botocore", "httplib")

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

                # Only what the function calls: botocore (every AWS call) and http.client (the Datadog
                # calls under urllib3; X-Ray's httplib patch leaves botocore's own connections to the
                # first). Patching all 13 modules the SDK knows costs ~70 ms of the cold start for nothing.
                tracer = Tracer(service=SERVICE_NAME, patch_modules=TRACED_MODULES)
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


def observe_datadog_call(operation: str, status: int | None, elapsed_ms: float) -> None:
    with _metrics_lock:
        metrics.add_metric(name="DatadogLatency", unit=MetricUnit.Milliseconds, value=round(elapsed_ms, 1))
    logger.debug("datadog call", extra={"operation": operation, "status": status, "elapsed_ms": round(elapsed_ms, 1)})
