"""`llmobs-actions`: the command line for producers (send, validate) and operators (dlq, invoke)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmobs_actions.contract import InvalidAction, parse_action
from llmobs_actions.messages import is_failure_record, is_sqs_event, unwrap, unwrap_document

QUEUE_URL_VARIABLE = "LLMOBS_ACTIONS_QUEUE_URL"
DLQ_URL_VARIABLE = "LLMOBS_ACTIONS_DLQ_URL"
REDRIVEN = "moved by SQS after maxReceiveCount (reasons: the function's log lines, by message_id)"


class CliError(Exception):
    """A problem the user can fix; printed without a traceback, exit code 2."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except CliError as error:
        print(f"llmobs-actions: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmobs-actions", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    send = commands.add_parser("send", help="build an action from flags, check it, and send it")
    actions = send.add_subparsers(required=True, metavar="ACTION")
    clone = actions.add_parser("clone", help="clone_dataset")
    clone.add_argument("--project-id", required=True)
    clone.add_argument("--dataset-id", required=True)
    clone.add_argument("--name", required=True, help="may use {date}, {event_time:%%Y-%%m-%%d}, {source_name}")
    clone.add_argument("--description")
    delete = actions.add_parser("delete", help="delete_experiments")
    delete.add_argument("--experiment-id", action="append", required=True, dest="experiment_ids")
    prune = actions.add_parser("prune", help="prune_experiments")
    prune.add_argument("--project-id", required=True)
    prune.add_argument("--dataset-id")
    prune.add_argument("--older-than-days", type=int)
    prune.add_argument("--name-prefix")
    prune.add_argument("--keep-newest", type=int)
    prune.add_argument("--max-deletions", type=int)
    for action in (clone, delete, prune):
        action.add_argument("--idempotency-key")
        action.add_argument("--dry-run", action="store_true")
        target = action.add_mutually_exclusive_group()
        target.add_argument("--queue-url", help=f"the actions queue (default: ${QUEUE_URL_VARIABLE})")
        target.add_argument("--event-bus", help="publish on this EventBridge bus instead")
        action.add_argument("--source", default="llmobs.actions", help="event source (with --event-bus)")
        action.add_argument("--detail-type", default="LLMObs Action", help="event detail-type (with --event-bus)")
        action.set_defaults(run=_send)
    clone.set_defaults(action="clone_dataset")
    delete.set_defaults(action="delete_experiments")
    prune.set_defaults(action="prune_experiments")

    validate = commands.add_parser("validate", help="check a message, an EventBridge event or an SQS event file")
    validate.add_argument("file", type=Path)
    validate.set_defaults(run=_validate)

    dlq = commands.add_parser("dlq", help="the dead-letter queue")
    dlq_commands = dlq.add_subparsers(required=True, metavar="COMMAND")
    listing = dlq_commands.add_parser("list", help="show dead-lettered messages and their reasons (keeps them)")
    listing.add_argument("--dlq-url", help=f"default: ${DLQ_URL_VARIABLE}")
    listing.add_argument("--max", type=int, default=100, help="show at most this many")
    listing.set_defaults(run=_dlq_list)
    redrive = dlq_commands.add_parser("redrive", help="move the messages back with an SQS message move task")
    redrive.add_argument("--dlq-url", help=f"default: ${DLQ_URL_VARIABLE}")
    redrive.add_argument("--queue-url", help=f"where they go back to (default: ${QUEUE_URL_VARIABLE})")
    redrive.add_argument("--no-wait", action="store_true", help="start the task and return")
    redrive.set_defaults(run=_dlq_redrive)

    invoke = commands.add_parser("invoke", help="run the handler once, here, on an event file (like sam local invoke)")
    invoke.add_argument("event", type=Path)
    invoke.set_defaults(run=_invoke)
    return parser


# --- send / validate -------------------------------------------------------------------------------


def _send(args: argparse.Namespace) -> int:
    fields = (
        "project_id",
        "dataset_id",
        "name",
        "description",
        "experiment_ids",
        "older_than_days",
        "name_prefix",
        "keep_newest",
        "max_deletions",
        "idempotency_key",
    )
    action: dict[str, Any] = {"action": args.action}
    action |= {field: getattr(args, field) for field in fields if getattr(args, field, None) is not None}
    if args.dry_run:
        action["dry_run"] = True
    try:
        parse_action(action)
    except InvalidAction as error:
        raise CliError(f"not sent, the action is invalid: {error}") from None
    body = json.dumps(action)
    if args.event_bus:
        entry = {"Source": args.source, "DetailType": args.detail_type, "Detail": body, "EventBusName": args.event_bus}
        result = _client("events").put_events(Entries=[entry])["Entries"][0]
        if "EventId" not in result:
            raise CliError(f"EventBridge refused the event: {result.get('ErrorCode')}: {result.get('ErrorMessage')}")
        print(result["EventId"])
        return 0
    queue_url = _required(args.queue_url, QUEUE_URL_VARIABLE, "--queue-url")
    print(_client("sqs").send_message(QueueUrl=queue_url, MessageBody=body)["MessageId"])
    return 0


def _validate(args: argparse.Namespace) -> int:
    try:
        document = json.loads(args.file.read_text())
    except (OSError, ValueError) as error:
        raise CliError(f"{args.file}: {error}") from None
    bodies = [r.get("body", "") for r in document["Records"]] if is_sqs_event(document) else [None]
    problems = 0
    for number, body in enumerate(bodies, start=1):
        where = f"{args.file} record {number}" if body is not None else str(args.file)
        try:
            payload = unwrap(body) if body is not None else unwrap_document(document)
            action = parse_action(payload.action)
        except InvalidAction as error:
            problems += 1
            print(f"{where}: invalid: {error}")
            continue
        print(f"{where}: valid {action.action}")
    return 1 if problems else 0


# --- dlq -------------------------------------------------------------------------------------------


def _dlq_list(args: argparse.Namespace) -> int:
    dlq_url = _required(args.dlq_url, DLQ_URL_VARIABLE, "--dlq-url")
    sqs = _client("sqs")
    seen: dict[str, dict[str, Any]] = {}
    handles = []
    while len(seen) < args.max:  # hide what was read so each receive brings new messages, then show it again
        received = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=min(10, args.max - len(seen)),
            MessageAttributeNames=["All"],
            VisibilityTimeout=30,
        ).get("Messages", [])
        if not received:
            break
        for message in received:
            seen[message["MessageId"]] = message
            handles.append(message["ReceiptHandle"])
    for start in range(0, len(handles), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=dlq_url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": h, "VisibilityTimeout": 0}
                for n, h in enumerate(handles[start : start + 10])
            ],
        )
    print(f"{'message id':36}  {'origin':11}  {'class':16}  {'http':4}  {'failed at':25}  reason")
    for message in seen.values():
        reason = {k: v.get("StringValue", "") for k, v in message.get("MessageAttributes", {}).items()}
        letter = describe_dead_letter(message["Body"], reason)
        print(
            f"{reason.get('source_message_id', message['MessageId'])[:36]:36}  {letter.origin:11}  "
            f"{letter.error_class[:16]:16}  {reason.get('http_status', '-'):4}  "
            f"{reason.get('failed_at', '-')[:25]:25}  {letter.reason}"
        )
    print(f"{len(seen)} message(s)")
    return 0


@dataclass(frozen=True)
class DeadLetter:
    origin: str  # who put it there: function, sqs, eventbridge, scheduler, lambda
    error_class: str
    reason: str


def describe_dead_letter(body: str, attributes: dict[str, str]) -> DeadLetter:
    """Who dead-lettered a message and why, from its attributes or, for a Lambda OnFailure record, its body."""
    if "error_class" in attributes:
        exhausted = attributes.get("retries_exhausted")
        why = attributes.get("error_message", "") + (f" ({exhausted})" if exhausted else "")
        return DeadLetter("function", attributes["error_class"], why)
    if "ERROR_CODE" in attributes:  # EventBridge or Scheduler could not deliver to the queue
        origin = "scheduler" if "SCHEDULE_ARN" in attributes else "eventbridge"
        source = attributes.get("SCHEDULE_ARN") or attributes.get("RULE_ARN", "")
        return DeadLetter(origin, attributes["ERROR_CODE"], f"{attributes.get('ERROR_MESSAGE', '')} ({source})")
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if is_failure_record(document):  # an asynchronous invocation that failed for good
        condition = str(document["requestContext"].get("condition", "unknown"))
        error = document.get("responsePayload")
        error = error if isinstance(error, dict) else {}
        return DeadLetter("lambda", condition, f"{error.get('errorType', '')}: {error.get('errorMessage', '')}")
    return DeadLetter("sqs", "redriven", REDRIVEN)


def _dlq_redrive(args: argparse.Namespace) -> int:
    dlq_url = _required(args.dlq_url, DLQ_URL_VARIABLE, "--dlq-url")
    queue_url = _required(args.queue_url, QUEUE_URL_VARIABLE, "--queue-url")
    sqs = _client("sqs")
    source_arn, destination_arn = (
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for url in (dlq_url, queue_url)
    )
    # The destination is named: messages the function dead-lettered itself have no source SQS knows of.
    task = sqs.start_message_move_task(SourceArn=source_arn, DestinationArn=destination_arn)
    print(f"started message move task {task['TaskHandle']}")
    if args.no_wait:
        return 0
    while True:
        [status] = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=1)["Results"]
        moved, total = (
            status.get("ApproximateNumberOfMessagesMoved", 0),
            status.get("ApproximateNumberOfMessagesToMove", 0),
        )
        done = int(30 * moved / total) if total else 30
        print(f"\r[{'#' * done}{'.' * (30 - done)}] {moved}/{total} {status['Status'].lower()}", end="", flush=True)
        if status["Status"] in ("COMPLETED", "CANCELLED", "FAILED"):
            print()
            if status["Status"] != "COMPLETED":
                raise CliError(f"the move task ended {status['Status']}: {status.get('FailureReason', '')}")
            return 0
        time.sleep(2)


# --- invoke ----------------------------------------------------------------------------------------


def _invoke(args: argparse.Namespace) -> int:
    """The handler, in this process, with this environment's settings and AWS credentials."""
    try:
        event = json.loads(args.event.read_text())
    except (OSError, ValueError) as error:
        raise CliError(f"{args.event}: {error}") from None
    from llmobs_actions import handler
    from llmobs_actions.settings import ConfigurationError

    class Context:
        function_name = "llmobs-actions-cli"
        memory_limit_in_mb = 256
        invoked_function_arn = "arn:aws:lambda:local:000000000000:function:llmobs-actions-cli"
        aws_request_id = f"cli-{int(time.time())}"
        deadline = time.monotonic() + 60

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


# --- AWS -------------------------------------------------------------------------------------------


def _client(service: str) -> Any:
    import boto3

    session = boto3.Session()
    if session.region_name is None:
        raise CliError("no AWS region: set AWS_REGION (or use a profile with a region)")
    if session.get_credentials() is None:
        raise CliError("no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    return session.client(service)


def _required(value: str | None, variable: str, flag: str) -> str:
    found = value or os.environ.get(variable)
    if not found:
        raise CliError(f"give {flag} or set ${variable} (the stack's outputs list the URLs)")
    return found


if __name__ == "__main__":
    sys.exit(main())
