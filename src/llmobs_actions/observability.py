"""Observability: the Powertools logger, metrics and tracer every module shares."""

from __future__ import annotations

import logging
import os
import threading

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME", "llmobs-actions")
METRICS_NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "LLMObsActions")

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)

# botocore logs whole responses at DEBUG, GetSecretValue's included: keys must never reach a log,
# whatever log level the function, the Lambda runtime or a test harness sets on the root logger.
for _library in ("botocore", "boto3"):
    logging.getLogger(_library).setLevel(logging.WARNING)

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
