"""`invoke`: the handler once, in this process, on an event file: sam local invoke without Docker."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import re
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

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

    with _function_log() as lines, warnings.catch_warnings():
        # Powertools warns when a batch emitted no metric: the function's business, not the terminal's
        warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
        try:
            with contextlib.redirect_stdout(sys.stderr):  # Powertools prints its metrics (EMF) there
                response = handler.lambda_handler(event, Context())
        except ConfigurationError as error:
            raise CliError(f"{error} (set them as the SAM template does for the function)") from None
        except handler.RetryLaterError as error:
            print(f"retried        {error} (Lambda's asynchronous retries would take it)")
            return 1
    if not is_sqs_event(event):
        print(json.dumps(response, indent=2, default=str))
        return 0 if isinstance(response, dict) and response.get("status") == "done" else 1
    failed = {item.get("itemIdentifier") for item in response.get("batchItemFailures", [])}
    outcomes = [_outcome(record["messageId"], failed, lines) for record in event["Records"]]
    for outcome in outcomes:
        print(outcome)
    print(json.dumps(response, default=str))
    return 0 if all(outcome.startswith("done") for outcome in outcomes) else 1


def _outcome(message_id: str, failed: set[str], lines: list[dict[str, Any]]) -> str:
    """What became of one record, as the function's own log lines say: done, retried and when, or dead-lettered
    and why."""
    mine = [line for line in lines if line.get("message_id") == message_id]
    said = {line.get("message"): line for line in mine}
    if "message dead-lettered" in said:
        line = said["message dead-lettered"]
        return f"dead-lettered  {message_id}  {line.get('error_class')}: {line.get('error_message')}"
    if message_id in failed:
        line = said.get("message will be retried", {})
        delay = line.get("retry_in_seconds")
        when = f"in {delay} s" if delay is not None else "when its visibility timeout ends"
        return f"retried        {message_id}  {when}: {line.get('error_class')}: {line.get('error_message')}"
    return f"done           {message_id}  {said.get('message done', {}).get('summary', '')}"


@contextlib.contextmanager
def _function_log() -> Iterator[list[dict[str, Any]]]:
    """The function's log lines, parsed, as they are written to stderr (as sam local invoke shows them: stdout
    is for what became of each record and the response)."""
    from llmobs_actions import observability

    lines: list[dict[str, Any]] = []
    handler = observability.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)

    class Tee(io.TextIOBase):
        def __init__(self, stream: IO[str]) -> None:
            self.stream = stream

        def write(self, text: str) -> int:
            for line in text.splitlines():
                with contextlib.suppress(ValueError):
                    document = json.loads(line)
                    if isinstance(document, dict):
                        lines.append(document)
            return self.stream.write(text)

        def flush(self) -> None:
            self.stream.flush()

    previous = handler.setStream(Tee(sys.stderr))
    try:
        yield lines
    finally:
        handler.setStream(previous)


def _fresh_ids(event: Any) -> Any:
    """The event with new SQS message ids and EventBridge event ids, sent and received now: what a new delivery
    would carry (a file's old SentTimestamp would make its message older than any queue keeps one)."""
    now_ms = str(int(time.time() * 1000))
    if is_sqs_event(event):
        for record in event["Records"]:
            record["messageId"] = str(uuid.uuid4())
            attributes = record.get("attributes")
            if isinstance(attributes, dict):
                attributes |= {"SentTimestamp": now_ms, "ApproximateFirstReceiveTimestamp": now_ms}
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
