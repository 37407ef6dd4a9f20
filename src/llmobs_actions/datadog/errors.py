"""What can go wrong talking to Datadog, as the failure policy tells the cases apart."""

from __future__ import annotations

from llmobs_actions.datadog.rate_budget import RateLimit


class DatadogError(Exception):
    """Any failure talking to Datadog."""


class DatadogHTTPError(DatadogError):
    """Datadog answered with a non-success status."""

    def __init__(self, operation: str, status: int, detail: str, rate_limit: RateLimit) -> None:
        super().__init__(f"{operation}: Datadog answered {status}" + (f": {detail}" if detail else ""))
        self.operation = operation
        self.status = status
        self.detail = detail
        self.rate_limit = rate_limit


class DatadogUnreachableError(DatadogError):
    """The request never reached Datadog (refused, DNS, connect timeout): safe to send again."""

    def __init__(self, operation: str, message: str) -> None:
        super().__init__(message)
        self.operation = operation


class DatadogNoAnswerError(DatadogError):
    """The request was sent but no answer arrived (read timeout, reset): it may have taken effect."""

    def __init__(self, operation: str, message: str) -> None:
        super().__init__(message)
        self.operation = operation
