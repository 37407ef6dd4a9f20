"""Datadog LLM Observability: the HTTP client (client), the rate budget its answers' headers keep
(rate_budget), what can go wrong (errors) and what its answers say (answers)."""

from llmobs_actions.datadog.answers import (
    MAX_PAGES,
    ClonedDataset,
    DatadogKeys,
    DatasetSummary,
    DatasetVersion,
    ExperimentSummary,
    ProjectSummary,
)
from llmobs_actions.datadog.client import DatadogClient
from llmobs_actions.datadog.errors import (
    DatadogError,
    DatadogHTTPError,
    DatadogNoAnswerError,
    DatadogUnreachableError,
)
from llmobs_actions.datadog.rate_budget import RateBudget, RateLimit
from llmobs_actions.datadog.transport import API_PREFIX, USER_AGENT, CallObserver, CallTracer, Transport

__all__ = [
    "API_PREFIX",
    "MAX_PAGES",
    "USER_AGENT",
    "CallObserver",
    "CallTracer",
    "ClonedDataset",
    "DatadogClient",
    "DatadogError",
    "DatadogHTTPError",
    "DatadogKeys",
    "DatadogNoAnswerError",
    "DatadogUnreachableError",
    "DatasetSummary",
    "DatasetVersion",
    "ExperimentSummary",
    "ProjectSummary",
    "RateBudget",
    "RateLimit",
    "Transport",
]
