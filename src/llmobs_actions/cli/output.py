"""What every command shares: where queues are named, one-line errors instead of tracebacks (what went wrong,
what to do), AWS clients, and the small pieces of terminal output (durations, bars, questions)."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from llmobs_actions.failures import ErrorClass

T = TypeVar("T", int, float)

QUEUE_URL_VARIABLE = "LLMOBS_ACTIONS_QUEUE_URL"
DLQ_URL_VARIABLE = "LLMOBS_ACTIONS_DLQ_URL"
RESULT_BUS_VARIABLE = "LLMOBS_ACTIONS_RESULT_BUS"
DEFAULT_SOURCE, DEFAULT_DETAIL_TYPE = "llmobs.actions", "LLMObs Action"
DEFAULT_WAIT_SECONDS = 300.0
# The services behind the operations this command calls, to name them in an error.
_SERVICE_OF = {
    "SendMessage": "SQS",
    "ReceiveMessage": "SQS",
    "DeleteMessage": "SQS",
    "ChangeMessageVisibilityBatch": "SQS",
    "GetQueueAttributes": "SQS",
    "StartMessageMoveTask": "SQS",
    "ListMessageMoveTasks": "SQS",
    "ListDeadLetterSourceQueues": "SQS",
    "PutEvents": "EventBridge",
    "GetSecretValue": "Secrets Manager",
    "CreateQueue": "SQS",
    "SetQueueAttributes": "SQS",
    "DeleteQueue": "SQS",
    "PutRule": "EventBridge",
    "PutTargets": "EventBridge",
    "RemoveTargets": "EventBridge",
    "DeleteRule": "EventBridge",
    "DescribeStacks": "CloudFormation",
}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class CliError(Exception):
    """A problem the user can fix; printed without a traceback, exit code 2."""


# The classes a dead letter can carry: the function's, SQS's redrive ("redriven"); EventBridge, Scheduler and
# Lambda name theirs in codes (SDK_CLIENT_ERROR, RetriesExhausted, ...), which any such code matches.
ERROR_CLASSES = (*(c.value for c in ErrorClass), "redriven")
_AWS_CODE = re.compile(r"^[A-Z][A-Za-z_]+$")


def error_class(text: str) -> str:
    if text in ERROR_CLASSES or _AWS_CODE.match(text):
        return text
    raise argparse.ArgumentTypeError(f"{text!r} is no error class; the classes: {', '.join(ERROR_CLASSES)}")


def positive(kind: type[T]) -> Callable[[str], T]:
    """An argparse type: a number above zero."""

    def parse(text: str) -> T:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text!r}: must be more than 0")
        return value

    return parse


def duration(text: str) -> float:
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 2h or 1d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def client(service: str) -> Any:
    import boto3

    session = boto3.Session()
    if session.region_name is None:
        raise CliError("no AWS region: set AWS_REGION (or use a profile with a region)")
    if session.get_credentials() is None:
        raise CliError("no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    try:
        return session.client(service)
    except ValueError as error:  # botocore: "Invalid endpoint: localhost:4566"
        named = [f"{name}={os.environ[name]}" for name in sorted(os.environ) if name.startswith("AWS_ENDPOINT_URL")]
        where = f" ({', '.join(named)}: a URL needs its scheme, e.g. http://localhost:4566)" if named else ""
        raise CliError(f"{error}{where}") from None


def explain_aws_error(error: Exception) -> str | None:
    """One line for an AWS error: the service, the error code, what to do. None: not an AWS error."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

    if isinstance(error, NoCredentialsError):
        return "no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    if isinstance(error, EndpointConnectionError):
        return f"AWS unreachable: {error} (check the region, the URL and the network)"
    if isinstance(error, BotoCoreError):
        return f"AWS: {type(error).__name__}: {error}"
    if not isinstance(error, ClientError):
        return None
    operation = error.operation_name
    service = _SERVICE_OF.get(operation, "AWS")
    code = str(error.response.get("Error", {}).get("Code", "Unknown"))
    message = str(error.response.get("Error", {}).get("Message", "")).strip()
    return f"{service} {code} ({operation}): {_what_to_do(code, operation, service, message)}"


def _what_to_do(code: str, operation: str, service: str, message: str) -> str:
    short = code.split(".")[-1]
    if short in ("AccessDenied", "AccessDeniedException", "AuthorizationError"):
        prefix = {"SQS": "sqs", "EventBridge": "events", "Secrets Manager": "secretsmanager"}.get(service, "the")
        return f"your credentials may not do this: ask for {prefix}:{operation} on that resource"
    if short in (
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
    ):
        return "your AWS credentials are expired or not valid: log in again (aws sso login, or fresh keys)"
    if short in ("NonExistentQueue", "QueueDoesNotExist", "InvalidAddress"):
        return "no such queue here: check the URL and the region (the stack's outputs list both queues)"
    if short == "UnsupportedOperation" and operation == "StartMessageMoveTask":
        return "a move task may already be running for this queue: wait for it (aws sqs list-message-move-tasks)"
    if short in ("ThrottlingException", "RequestThrottled", "Throttling"):
        return "AWS is throttling these calls: try again in a moment"
    return message or "see the AWS documentation for this error"


def required(value: str | None, variable: str, flag: str) -> str:
    found = value or os.environ.get(variable)
    if not found:
        raise CliError(f"give {flag} or set ${variable} (the stack's outputs list the URLs)")
    return found


def bar(done: int, total: int) -> str:
    filled = int(30 * done / total) if total else 30
    return f"[{'#' * filled}{'.' * (30 - filled)}] {done}/{total}"


def confirm(question: str) -> bool:
    print(f"{question} [y/N] ", end="", flush=True)
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")
