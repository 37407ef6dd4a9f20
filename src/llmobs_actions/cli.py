"""`llmobs-actions`: the command line for producers (send, validate) and operators (dlq, invoke)."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llmobs_actions.contract import InvalidAction, parse_action
from llmobs_actions.dead_letters import Selection, counts, read_all, redrive_selected, release
from llmobs_actions.messages import SOURCE_MESSAGE_ID, is_sqs_event, unwrap, unwrap_document
from llmobs_actions.result_watch import ResultWatch, WatchError
from llmobs_actions.results import DEFAULT_SOURCE as RESULT_SOURCE

QUEUE_URL_VARIABLE = "LLMOBS_ACTIONS_QUEUE_URL"
DLQ_URL_VARIABLE = "LLMOBS_ACTIONS_DLQ_URL"
RESULT_BUS_VARIABLE = "LLMOBS_ACTIONS_RESULT_BUS"
DEFAULT_SOURCE, DEFAULT_DETAIL_TYPE = "llmobs.actions", "LLMObs Action"
DEFAULT_WAIT_SECONDS = 300.0
_PROBE_SECONDS = 30.0
_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
# The services behind the operations this command calls, to name them in an error.
_SERVICE_OF = {
    "SendMessage": "SQS",
    "ReceiveMessage": "SQS",
    "DeleteMessage": "SQS",
    "ChangeMessageVisibilityBatch": "SQS",
    "GetQueueAttributes": "SQS",
    "StartMessageMoveTask": "SQS",
    "ListMessageMoveTasks": "SQS",
    "PutEvents": "EventBridge",
    "GetSecretValue": "Secrets Manager",
    "CreateQueue": "SQS",
    "SetQueueAttributes": "SQS",
    "DeleteQueue": "SQS",
    "PutRule": "EventBridge",
    "PutTargets": "EventBridge",
    "RemoveTargets": "EventBridge",
    "DeleteRule": "EventBridge",
}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class CliError(Exception):
    """A problem the user can fix; printed without a traceback, exit code 2."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except CliError as error:
        print(f"llmobs-actions: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # an AWS error: one line saying what to do, never a traceback
        explained = _explain_aws_error(error)
        if explained is None:
            raise
        print(f"llmobs-actions: {explained}", file=sys.stderr)
        return 2


# --- the parser, with the examples every --help shows (a test runs each one) -------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmobs-actions", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    send = commands.add_parser("send", help="build an action from flags, check it, and send it")
    actions = send.add_subparsers(required=True, metavar="ACTION")
    clone = _command(
        actions,
        "clone",
        "clone_dataset",
        "llmobs-actions send clone --project-id $PROJECT --dataset-id $DATASET --name golden-{date} "
        "--queue-url $QUEUE_URL",
        "llmobs-actions send clone --project-id $PROJECT --dataset-id $DATASET --name snapshot --event-bus default",
        "llmobs-actions send clone --project-id $PROJECT --dataset-id $DATASET --name ci-{date} --queue-url $QUEUE_URL "
        "--wait --timeout 120",
    )
    _project(clone)
    _dataset(clone, required=True)
    clone.add_argument("--name", required=True, help="may use {date}, {event_time:%%Y-%%m-%%d}, {source_name}")
    clone.add_argument("--description")
    clone.add_argument("--event-time", help="the time name templates read (ISO 8601)")
    delete = _command(
        actions,
        "delete",
        "delete_experiments",
        "llmobs-actions send delete --experiment-id $EXPERIMENT --queue-url $QUEUE_URL",
    )
    delete.add_argument("--experiment-id", action="append", required=True, dest="experiment_ids")
    prune = _command(
        actions,
        "prune",
        "prune_experiments",
        "llmobs-actions send prune --project-id $PROJECT --older-than-days 30 --keep-newest 5 --dry-run "
        "--queue-url $QUEUE_URL",
        "llmobs-actions send prune --project-name my-app --name-prefix nightly- --keep-newest-per-name 3 --dry-run "
        "--queue-url $QUEUE_URL",
    )
    _project(prune)
    _dataset(prune, required=False)
    _selectors(prune)
    prune.add_argument("--keep-newest-per-name", type=int, help="of each experiment name, keep the newest N runs")
    delete_datasets = _command(
        actions,
        "delete-datasets",
        "delete_datasets",
        "llmobs-actions send delete-datasets --project-id $PROJECT --dataset-id $SNAPSHOT --queue-url $QUEUE_URL",
    )
    _project(delete_datasets)
    delete_datasets.add_argument("--dataset-id", action="append", required=True, dest="dataset_ids")
    prune_datasets = _command(
        actions,
        "prune-datasets",
        "prune_datasets",
        "llmobs-actions send prune-datasets --project-name my-app --name-prefix golden-snapshot- --older-than-days 30 "
        "--dry-run --queue-url $QUEUE_URL",
    )
    _project(prune_datasets)
    _selectors(prune_datasets)
    prune_datasets.add_argument(
        "--include-datasets-in-use", action="store_true", help="also delete datasets live experiments use"
    )
    for action in (clone, delete, prune, delete_datasets, prune_datasets):
        action.add_argument("--idempotency-key")
        action.add_argument("--dry-run", action="store_true")
        target = action.add_mutually_exclusive_group()
        target.add_argument("--queue-url", help=f"the actions queue (default: ${QUEUE_URL_VARIABLE})")
        target.add_argument("--event-bus", help="publish on this EventBridge bus instead")
        action.add_argument("--source", help=f"with --event-bus: the event's source (default {DEFAULT_SOURCE})")
        action.add_argument("--detail-type", help=f"with --event-bus: its detail-type (default {DEFAULT_DETAIL_TYPE})")
        action.add_argument("--correlation-id", help="a free string the result event echoes (default with --wait: new)")
        waiting = action.add_argument_group("waiting for the outcome")
        waiting.add_argument("--wait", action="store_true", help="wait for the result event and print the outcome")
        waiting.add_argument(
            "--timeout", type=float, default=DEFAULT_WAIT_SECONDS, help=f"seconds (default {DEFAULT_WAIT_SECONDS})"
        )
        waiting.add_argument(
            "--result-bus", help=f"the stack's ResultEventBusName (default: ${RESULT_BUS_VARIABLE}, else default)"
        )
        waiting.add_argument("--result-source", help=f"the stack's ResultEventSource (default {RESULT_SOURCE})")
        waiting.add_argument("--json", action="store_true", help="print the result event's detail as JSON")
        action.set_defaults(run=_send)

    validate = _command(
        commands,
        "validate",
        None,
        "llmobs-actions validate events/sqs-clone-dataset.json",
        help="check a message, an EventBridge event or an SQS event file",
    )
    validate.add_argument("file", type=Path)
    validate.set_defaults(run=_validate)

    dlq = commands.add_parser("dlq", help="the dead-letter queue")
    dlq_commands = dlq.add_subparsers(required=True, metavar="COMMAND")
    listing = _command(
        dlq_commands,
        "list",
        None,
        "llmobs-actions dlq list --dlq-url $DLQ_URL",
        "llmobs-actions dlq list --dlq-url $DLQ_URL --json",
        help="show dead-lettered messages, who put them there and why, with counts (they stay in the queue)",
    )
    listing.add_argument("--dlq-url", help=f"default: ${DLQ_URL_VARIABLE}")
    listing.add_argument("--max", type=int, default=1000, help="read at most this many (default 1000)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(run=_dlq_list)
    redrive = _command(
        dlq_commands,
        "redrive",
        None,
        "llmobs-actions dlq redrive --dlq-url $DLQ_URL --queue-url $QUEUE_URL --dry-run",
        "llmobs-actions dlq redrive --dlq-url $DLQ_URL --queue-url $QUEUE_URL --error-class transient "
        "--older-than 1h --max-per-second 5 --yes",
        help="move dead-lettered messages back to their queue",
    )
    redrive.add_argument("--dlq-url", help=f"default: ${DLQ_URL_VARIABLE}")
    redrive.add_argument("--queue-url", help=f"where they go back to (default: ${QUEUE_URL_VARIABLE})")
    redrive.add_argument("--error-class", action="append", default=[], help="only this class (repeatable)")
    redrive.add_argument("--older-than", type=_duration, help="only those dead-lettered longer ago (30m, 2h, 1d)")
    redrive.add_argument("--include-invalid", action="store_true", help="invalid messages too (they fail again)")
    redrive.add_argument("--max-per-second", type=float, help="move at most this many a second")
    redrive.add_argument("--dry-run", action="store_true", help="say what would move, move nothing")
    redrive.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    redrive.add_argument("--no-wait", action="store_true", help="with a move task: start it and return")
    redrive.set_defaults(run=_dlq_redrive)

    invoke = _command(
        commands,
        "invoke",
        None,
        "llmobs-actions invoke events/sqs-delete-experiments.json",
        help="run the handler once, here, on an event file (like sam local invoke)",
    )
    invoke.add_argument("event", type=Path)
    invoke.add_argument("--timeout", type=int, help="seconds (default: template.yaml's FunctionTimeout, else 60)")
    invoke.add_argument("--keep-ids", action="store_true", help="keep the file's message and event ids")
    invoke.set_defaults(run=_invoke)
    return parser


def _command(
    commands: Any, name: str, action: str | None, *examples: str, help: str | None = None
) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with runnable examples."""
    epilog = "examples:\n" + "\n".join(f"  {example}" for example in examples)
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help or action, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    if action:
        parser.set_defaults(action=action)
    return parser


def _project(parser: argparse.ArgumentParser) -> None:
    project = parser.add_mutually_exclusive_group(required=True)
    project.add_argument("--project-id")
    project.add_argument("--project-name", help="the project's exact name, instead of its id")


def _dataset(parser: argparse.ArgumentParser, *, required: bool) -> None:
    dataset = parser.add_mutually_exclusive_group(required=required)
    dataset.add_argument("--dataset-id")
    dataset.add_argument("--dataset-name", help="the dataset's exact name in the project, instead of its id")


def _selectors(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--older-than-days", type=int)
    parser.add_argument("--name-prefix")
    parser.add_argument("--keep-newest", type=int)
    parser.add_argument("--max-deletions", type=int)


def help_examples() -> list[str]:
    """Every example line of every command's --help, as written there."""
    found: list[str] = []
    pending = [_parser()]
    while pending:
        parser = pending.pop()
        found += [line.strip() for line in (parser.epilog or "").splitlines() if line.startswith("  llmobs-actions")]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                pending += list(dict.fromkeys(action.choices.values()))
    return found


def _duration(text: str) -> float:
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 2h or 1d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


# --- send / validate -------------------------------------------------------------------------------


def _send(args: argparse.Namespace) -> int:
    if not args.event_bus and (args.source or args.detail_type):
        raise CliError("--source and --detail-type go with --event-bus (a queue message has neither)")
    fields = (
        "project_id",
        "project_name",
        "dataset_id",
        "dataset_name",
        "dataset_ids",
        "keep_newest_per_name",
        "name",
        "description",
        "event_time",
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
    if getattr(args, "include_datasets_in_use", False):
        action["include_datasets_in_use"] = True
    if args.wait and args.timeout <= 0:
        raise CliError("--timeout must be more than 0 seconds")
    if args.correlation_id or args.wait:
        action["correlation_id"] = args.correlation_id or f"cli-{uuid.uuid4()}"
    if not args.wait and (args.result_bus or args.result_source or args.json):
        raise CliError("--result-bus, --result-source and --json go with --wait")
    try:
        parse_action(action)
    except InvalidAction as error:
        raise CliError(f"not sent, the action is invalid: {error}") from None
    if not args.wait:
        print(_deliver(args, action))
        return 0
    bus = args.result_bus or os.environ.get(RESULT_BUS_VARIABLE) or "default"
    watch = ResultWatch(
        _client("events"), _client("sqs"), bus, action["correlation_id"], source=args.result_source or RESULT_SOURCE
    )
    try:
        with watch:
            watch.prove_live(min(_PROBE_SECONDS, args.timeout))
            sent = _deliver(args, action)
            via_queue = not args.event_bus  # then the result names this very message
            with _Spinner(f"sent {sent}; waiting for its outcome (up to {args.timeout:g} s)"):
                event = watch.wait(args.timeout, sent if via_queue else None)
    except WatchError as error:
        raise CliError(str(error)) from None
    except KeyboardInterrupt:
        print("llmobs-actions: stopped waiting; a message already sent is still processed", file=sys.stderr)
        return 130
    finally:
        if watch.leftovers:
            print(f"llmobs-actions: could not remove {', '.join(watch.leftovers)}: delete it by hand", file=sys.stderr)
    if event is None:
        print(
            f"llmobs-actions: no outcome for {sent} within {args.timeout:g} s: it may still be retried "
            f"(see `llmobs-actions dlq list` later); is the stack's ResultEventBusName {bus!r}?",
            file=sys.stderr,
        )
        return 2
    detail = event["detail"]
    print(json.dumps(detail) if args.json else _outcome_line(detail))
    return 0 if detail.get("status") == "succeeded" else 1


def _deliver(args: argparse.Namespace, action: dict[str, Any]) -> str:
    """Send the action to the queue or the bus; the SQS message id or the EventBridge event id."""
    body = json.dumps(action)
    if args.event_bus:
        entry = {
            "Source": args.source or DEFAULT_SOURCE,
            "DetailType": args.detail_type or DEFAULT_DETAIL_TYPE,
            "Detail": body,
            "EventBusName": args.event_bus,
        }
        result = _client("events").put_events(Entries=[entry])["Entries"][0]
        if "EventId" not in result:
            raise CliError(f"EventBridge refused the event: {result.get('ErrorCode')}: {result.get('ErrorMessage')}")
        return str(result["EventId"])
    queue_url = _required(args.queue_url, QUEUE_URL_VARIABLE, "--queue-url")
    return str(_client("sqs").send_message(QueueUrl=queue_url, MessageBody=body)["MessageId"])


def _outcome_line(detail: dict[str, Any]) -> str:
    """One line a person reads: the new dataset, the counts, or why it failed and where it is now."""
    again = " (done before: this is the stored result)" if detail.get("duplicate") else ""
    if detail.get("status") != "succeeded":
        error = detail.get("error") or {}
        status = f", HTTP {error['http_status']}" if error.get("http_status") else ""
        return (
            f"failed ({error.get('class')}{status}): {error.get('message')}\n"
            "the message is in the dead-letter queue: llmobs-actions dlq list"
        )
    result = detail.get("result") or {}
    dry = " (dry run)" if detail.get("dry_run") else ""
    if "new_dataset_id" in result:
        version = result.get("current_version")
        adopted = " (made by an earlier attempt)" if result.get("adopted") else ""
        return (
            f"done{dry}: new dataset {result['new_dataset_id']} named {result.get('name')!r}"
            f"{f' (version {version})' if version is not None else ''}{adopted}{again}"
        )
    counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in result.items() if type(v) is int)
    return f"done{dry}: {detail.get('action')}: {counts or 'nothing to report'}{again}"


class _Spinner:
    """Progress on stderr while the main thread long-polls: a turning wheel and the seconds waited on a
    terminal, one line otherwise (a CI log is no place for carriage returns)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.live = sys.stderr.isatty()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._turn, daemon=True)

    def __enter__(self) -> _Spinner:
        if self.live:
            self._thread.start()
        else:
            print(self.text, file=sys.stderr)
        return self

    def _turn(self) -> None:
        started, turns = time.monotonic(), 0
        while not self._stop.wait(0.1):
            turns += 1
            waited = time.monotonic() - started
            print(f"\r{_SPINNER[turns % len(_SPINNER)]} {self.text} {waited:.0f}s", end="", file=sys.stderr, flush=True)

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self._stop.set()
            self._thread.join()
            print("\r\033[K", end="", file=sys.stderr, flush=True)


def _validate(args: argparse.Namespace) -> int:
    try:
        document = json.loads(args.file.read_text())
    except (OSError, ValueError) as error:
        raise CliError(f"{args.file}: {error}") from None
    bodies = [r.get("body") for r in document["Records"]] if is_sqs_event(document) else [None]
    problems = 0
    for number, body in enumerate(bodies, start=1):
        sqs_record = is_sqs_event(document)
        where = f"{args.file} record {number}" if sqs_record else str(args.file)
        try:
            if sqs_record and not isinstance(body, str):
                raise InvalidAction(f"the record's body is not a string ({type(body).__name__})")
            payload = unwrap(body) if isinstance(body, str) else unwrap_document(document)
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
    letters = read_all(sqs, dlq_url, args.max)
    release(sqs, dlq_url, letters)
    tally = counts(letters)
    if args.json:
        print(json.dumps({"count": len(letters), **tally, "messages": [d.as_json() for d in letters]}, indent=2))
        return 0
    print(f"{'message id':36}  {'origin':11}  {'class':16}  {'http':4}  {'failed at':25}  reason")
    for letter in letters:
        failed = letter.failed_at
        print(
            f"{letter.source_message_id[:36]:36}  {letter.origin:11}  {letter.error_class[:16]:16}  "
            f"{letter.attributes.get('http_status', '-'):4}  "
            f"{failed.isoformat(timespec='seconds') if failed else '-':25}  {letter.reason}"
        )
    print(f"{len(letters)} message(s)")
    for title, tallied in (("by error_class", tally["by_error_class"]), ("by origin", tally["by_origin"])):
        if tallied:
            print(f"{title}: " + ", ".join(f"{name} {count}" for name, count in tallied.items()))
    return 0


def _dlq_redrive(args: argparse.Namespace) -> int:
    dlq_url = _required(args.dlq_url, DLQ_URL_VARIABLE, "--dlq-url")
    queue_url = _required(args.queue_url, QUEUE_URL_VARIABLE, "--queue-url")
    sqs = _client("sqs")
    selection = Selection(frozenset(args.error_class), args.older_than, args.include_invalid)
    letters = read_all(sqs, dlq_url, limit=100_000)
    release(sqs, dlq_url, letters)
    chosen = [letter for letter in letters if selection.takes(letter)]
    invalid_kept = sum(1 for letter in letters if letter.error_class == "invalid" and not args.include_invalid)
    plan = f"{len(chosen)} of {len(letters)} message(s) back to {queue_url}"
    if invalid_kept:
        plan += f" ({invalid_kept} invalid kept: they would fail again; --include-invalid takes them)"
    if not chosen:
        print(f"nothing to redrive: {plan}")
        return 0
    if args.dry_run:
        by_class = counts(chosen)["by_error_class"]
        print(f"dry run, would move {plan}: " + ", ".join(f"{name} {count}" for name, count in by_class.items()))
        return 0
    if not args.yes and not _confirm(f"move {plan}?"):
        print("nothing moved")
        return 1
    print(f"moving {plan}")
    # A move task moves everything, what arrived since included, with new message ids and the attributes kept:
    # only for an unfiltered redrive of messages whose attributes name their first message (the function's).
    keeps_identity = all(SOURCE_MESSAGE_ID in letter.attributes for letter in letters)
    if (
        len(chosen) == len(letters)
        and not selection.filters
        and keeps_identity
        and _a_move_task_rate(args.max_per_second)
    ):
        return _move_task(sqs, dlq_url, queue_url, args)
    moved = redrive_selected(
        sqs,
        dlq_url,
        queue_url,
        selection,
        expected=len(chosen),
        max_per_second=args.max_per_second,
        progress=lambda done: print(f"\r{_bar(done, len(chosen))}", end="", flush=True),
    )
    print(f"\nmoved {moved} message(s)")
    return 0 if moved == len(chosen) else 1


def _a_move_task_rate(rate: float | None) -> bool:
    """Whether SQS's move task can keep this rate: MaxNumberOfMessagesPerSecond is a whole number, 1 to 500."""
    return rate is None or (rate == int(rate) and 1 <= rate <= 500)


def _move_task(sqs: Any, dlq_url: str, queue_url: str, args: argparse.Namespace) -> int:
    source_arn, destination_arn = (
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for url in (dlq_url, queue_url)
    )
    # The destination is named: messages the function dead-lettered itself have no source SQS knows of.
    options = {"MaxNumberOfMessagesPerSecond": int(args.max_per_second)} if args.max_per_second else {}
    task = sqs.start_message_move_task(SourceArn=source_arn, DestinationArn=destination_arn, **options)
    print(f"started message move task {task['TaskHandle']}")
    if args.no_wait:
        return 0
    while True:
        [status] = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=1)["Results"]
        moved, total = (
            status.get("ApproximateNumberOfMessagesMoved", 0),
            status.get("ApproximateNumberOfMessagesToMove", 0),
        )
        print(f"\r{_bar(moved, total)} {status['Status'].lower()}", end="", flush=True)
        if status["Status"] in ("COMPLETED", "CANCELLED", "FAILED"):
            print()
            if status["Status"] != "COMPLETED":
                raise CliError(f"the move task ended {status['Status']}: {status.get('FailureReason', '')}")
            return 0
        time.sleep(2)


def _bar(done: int, total: int) -> str:
    filled = int(30 * done / total) if total else 30
    return f"[{'#' * filled}{'.' * (30 - filled)}] {done}/{total}"


def _confirm(question: str) -> bool:
    print(f"{question} [y/N] ", end="", flush=True)
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


# --- invoke ----------------------------------------------------------------------------------------


def _invoke(args: argparse.Namespace) -> int:
    """The handler, in this process, with this environment's settings and AWS credentials."""
    try:
        event = json.loads(args.event.read_text())
    except (OSError, ValueError) as error:
        raise CliError(f"{args.event}: {error}") from None
    if not args.keep_ids:
        event = _fresh_ids(event)  # a second run is a new delivery, not a duplicate of the first
    from llmobs_actions import handler
    from llmobs_actions.settings import ConfigurationError

    timeout = args.timeout or _template_timeout(Path("template.yaml")) or 60

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


def _template_timeout(template: Path) -> int | None:
    """FunctionTimeout's default in a SAM template, read without a YAML parser (the command needs none)."""
    try:
        text = template.read_text()
    except OSError:
        return None
    match = re.search(r"^  FunctionTimeout:\n(?:    .*\n)*?    Default: \"?(\d+)\"?", text, re.MULTILINE)
    return int(match.group(1)) if match else None


# --- AWS -------------------------------------------------------------------------------------------


def _client(service: str) -> Any:
    import boto3

    session = boto3.Session()
    if session.region_name is None:
        raise CliError("no AWS region: set AWS_REGION (or use a profile with a region)")
    if session.get_credentials() is None:
        raise CliError("no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    return session.client(service)


def _explain_aws_error(error: Exception) -> str | None:
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


def _required(value: str | None, variable: str, flag: str) -> str:
    found = value or os.environ.get(variable)
    if not found:
        raise CliError(f"give {flag} or set ${variable} (the stack's outputs list the URLs)")
    return found


if __name__ == "__main__":
    sys.exit(main())
