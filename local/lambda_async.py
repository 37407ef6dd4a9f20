"""What Lambda does with an asynchronous invocation (a rule or schedule wired straight to the function):
it tries the event 1 + MaximumRetryAttempts times, and when every try failed it sends an invocation
record, not the event, to the OnFailure destination.

The record's shape is the one the Lambda developer guide documents ("Capturing records of Lambda
asynchronous invocations"): version, timestamp, requestContext (requestId, functionArn, condition,
approximateInvokeCount), requestPayload (the event), responseContext (statusCode, executedVersion,
functionError) and responsePayload (the last error).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:llmobs-actions-dev-ActionsFunction"


def failure_record(
    event: Any, error: BaseException, tries: int, condition: str = "RetriesExhausted", at: datetime | None = None
) -> dict[str, Any]:
    return {
        "version": "1.0",
        "timestamp": (at or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"{FUNCTION_ARN}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": tries,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": str(error), "errorType": type(error).__name__, "stackTrace": []},
    }


def invoke_async(
    invoke: Callable[[Any], Any], event: Any, maximum_retry_attempts: int, send_to_destination: Callable[[str], Any]
) -> Any:
    """Try `event` as Lambda would; on final failure hand the record's JSON to the OnFailure destination."""
    last: BaseException | None = None
    for _ in range(1 + maximum_retry_attempts):
        try:
            return invoke(event)
        except Exception as error:  # Lambda retries any function error
            last = error
    assert last is not None
    send_to_destination(json.dumps(failure_record(event, last, 1 + maximum_retry_attempts)))
    return None
