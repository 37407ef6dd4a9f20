"""`invoke`: the handler once, in this process, on an event file: sam local invoke without Docker."""

from __future__ import annotations

import argparse
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

from llmobs_actions.cli.output import CliError
from llmobs_actions.messages import is_sqs_event


def invoke(args: argparse.Namespace) -> int:
    """The handler, in this process, with this environment's settings and AWS credentials."""
    try:
        event = json.loads(args.event.read_text())
    except (OSError, ValueError) as error:
        raise CliError(f"{args.event}: {error}") from None
    if not args.keep_ids:
        event = _fresh_ids(event)  # a second run is a new delivery, not a duplicate of the first
    from llmobs_actions import handler
    from llmobs_actions.settings import ConfigurationError

    timeout = args.timeout or template_timeout(Path("template.yaml")) or 60

    class Context:
        function_name = "llmobs-actions-cli"
        memory_limit_in_mb = 256
        invoked_function_arn = "arn:aws:lambda:local:000000000000:function:llmobs-actions-cli"
        aws_request_id = f"cli-{uuid.uuid4()}"
        deadline = time.monotonic() + timeout

        def get_remaining_time_in_millis(self) -> int:
            return int((self.deadline - time.monotonic()) * 1000)

    try:
        response = handler.lambda_handler(event, Context())
    except ConfigurationError as error:
        raise CliError(f"{error} (set them as the SAM template does for the function)") from None
    except handler.RetryLaterError as error:
        print(json.dumps({"retry_later": str(error)}))
        return 1
    print(json.dumps(response, indent=2, default=str))
    return 0


def _fresh_ids(event: Any) -> Any:
    """The event with new SQS message ids and EventBridge event ids: what a new delivery would carry."""
    if is_sqs_event(event):
        for record in event["Records"]:
            record["messageId"] = str(uuid.uuid4())
            try:
                body = json.loads(record.get("body", ""))
            except (TypeError, ValueError):
                continue
            if isinstance(body, dict) and "detail-type" in body and "id" in body:
                record["body"] = json.dumps(body | {"id": str(uuid.uuid4())})
    elif isinstance(event, dict) and "detail-type" in event and "id" in event:
        event = event | {"id": str(uuid.uuid4())}
    return event


def template_timeout(template: Path) -> int | None:
    """FunctionTimeout's default in a SAM template, read without a YAML parser (the command needs none)."""
    try:
        text = template.read_text()
    except OSError:
        return None
    match = re.search(r"^  FunctionTimeout:\n(?:    .*\n)*?    Default: \"?(\d+)\"?", text, re.MULTILINE)
    return int(match.group(1)) if match else None
