"""`llmobs-actions`: the command line for producers (send, validate) and operators (dlq, invoke)."""

# One module per command group (send, dlq, validate, invoke); what they share is in output.py.

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, NoReturn

from llmobs_actions import __version__
from llmobs_actions.cli.dlq import dlq_list as run_dlq_list
from llmobs_actions.cli.dlq import dlq_redrive as run_dlq_redrive
from llmobs_actions.cli.env import env as run_env
from llmobs_actions.cli.invoke import invoke as run_invoke
from llmobs_actions.cli.invoke import template_timeout
from llmobs_actions.cli.output import (
    DEFAULT_DETAIL_TYPE,
    DEFAULT_SOURCE,
    DEFAULT_WAIT_SECONDS,
    DLQ_URL_VARIABLE,
    ERROR_CLASSES,
    QUEUE_URL_VARIABLE,
    RESULT_BUS_VARIABLE,
    CliError,
    duration,
    error_class,
    explain_aws_error,
    positive,
)
from llmobs_actions.cli.send import outcome_line
from llmobs_actions.cli.send import send as run_send
from llmobs_actions.cli.validate import validate as run_validate
from llmobs_actions.results import DEFAULT_SOURCE as RESULT_SOURCE

DESCRIPTION = __doc__
__all__ = ["help_examples", "main", "outcome_line", "template_timeout"]


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            args = _parser(arguments).parse_args(arguments)
        except SystemExit as done:  # --help, --version (0), or a usage error argparse printed (2)
            return int(done.code or 0)
        return int(args.run(args))
    except KeyboardInterrupt:  # Ctrl-C, at a prompt or while waiting: no traceback
        print("\nllmobs-actions: interrupted", file=sys.stderr)
        if argv is None:  # the command itself: stop now, not once a record's worker thread ends its call
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        return 130
    except CliError as error:
        print(f"llmobs-actions: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # an AWS error: one line saying what to do, never a traceback
        explained = explain_aws_error(error)
        if explained is None:
            raise
        print(f"llmobs-actions: {explained}", file=sys.stderr)
        return 2


# --- the parser, with the examples every --help shows (a test runs each one) -------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, naming a mistyped flag first: "--projcet-id" is the mistake, not the missing "--project-id"."""

    arguments: ClassVar[list[str]] = []

    def error(self, message: str) -> NoReturn:
        known = set(self._option_string_actions)
        unknown = [a for a in self.arguments if a.startswith("--") and a.split("=", 1)[0] not in known]
        if unknown and "unrecognized" not in message and self._subparsers is None:
            message = f"unrecognized arguments: {' '.join(unknown)} ({message})"
        super().error(message)


def _parser(arguments: list[str] | None = None) -> argparse.ArgumentParser:
    _Parser.arguments = arguments or []
    parser = _Parser(
        prog="llmobs-actions",
        description=DESCRIPTION,
        epilog=_examples(
            "llmobs-actions send clone --project-id $PROJECT --dataset-id $DATASET --name golden-{date} "
            "--queue-url $QUEUE_URL --wait",
            "llmobs-actions dlq list --dlq-url $DLQ_URL",
            "llmobs-actions --version",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"llmobs-actions {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    send = commands.add_parser(
        "send",
        help="build an action from flags, check it, and send it",
        description="Build an action from flags, check it against the contract, and send it to the actions "
        "queue (or publish it on an EventBridge bus); --wait prints its outcome.",
        epilog=_examples(
            "llmobs-actions send clone --project-id $PROJECT --dataset-id $DATASET --name golden-{date} "
            "--queue-url $QUEUE_URL",
            "llmobs-actions send prune-datasets --project-name my-app --name-prefix golden-snapshot- "
            "--older-than-days 30 --dry-run --queue-url $QUEUE_URL",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    clone.add_argument("--description", help="the new dataset's description (may use the same templates)")
    clone.add_argument("--event-time", help="the time name templates read (ISO 8601)")
    delete = _command(
        actions,
        "delete",
        "delete_experiments",
        "llmobs-actions send delete --experiment-id $EXPERIMENT --queue-url $QUEUE_URL",
    )
    delete.add_argument(
        "--experiment-id", action="append", required=True, dest="experiment_ids", help="an id (repeatable)"
    )
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
    delete_datasets.add_argument(
        "--dataset-id", action="append", required=True, dest="dataset_ids", help="an id (repeatable)"
    )
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
    export = _command(
        actions,
        "export-dataset",
        "export_dataset",
        "llmobs-actions send export-dataset --project-id $PROJECT --dataset-id $DATASET --queue-url $QUEUE_URL --wait",
    )
    _project(export)
    _dataset(export, required=True)
    export.add_argument("--version", type=int, help="the version to export (default: the current one)")
    backup = _command(
        actions,
        "backup-datasets",
        "backup_datasets",
        "llmobs-actions send backup-datasets --project-id $PROJECT --queue-url $QUEUE_URL --wait",
    )
    _project(backup)
    backup.add_argument("--name-prefix", help="only the datasets whose name starts so")
    backup.add_argument("--event-time", help="the time of the run (ISO 8601)")
    importing = _command(
        actions,
        "import-dataset",
        "import_dataset",
        "llmobs-actions send import-dataset --project-id $PROJECT --name restored-{date} "
        "--source-uri s3://my-backups/exports/v1/manifest.json --queue-url $QUEUE_URL",
    )
    _project(importing)
    importing.add_argument("--source-uri", required=True, help="the s3:// URI of an export's manifest.json")
    importing.add_argument("--name", required=True, help="the new dataset's name; may use {date}, {event_time:...}")
    importing.add_argument("--description", help="the new dataset's description")
    importing.add_argument("--event-time", help="the time name templates read (ISO 8601)")
    restore = _command(
        actions,
        "restore-dataset-version",
        "restore_dataset_version",
        "llmobs-actions send restore-dataset-version --project-id $PROJECT --dataset-id $DATASET --version 0 "
        "--dry-run --queue-url $QUEUE_URL",
    )
    _project(restore)
    _dataset(restore, required=True)
    restore.add_argument("--version", type=int, required=True, help="the version to bring back")
    for action in (clone, delete, prune, delete_datasets, prune_datasets, export, backup, importing, restore):
        action.add_argument("--idempotency-key", help="two messages with the same key take effect once")
        action.add_argument("--dry-run", action="store_true", help="the function says what it would do, does nothing")
        target = action.add_mutually_exclusive_group()
        target.add_argument("--queue-url", help=f"the actions queue (default: ${QUEUE_URL_VARIABLE})")
        target.add_argument("--event-bus", help="publish on this EventBridge bus instead")
        action.add_argument("--source", help=f"with --event-bus: the event's source (default {DEFAULT_SOURCE})")
        action.add_argument("--detail-type", help=f"with --event-bus: its detail-type (default {DEFAULT_DETAIL_TYPE})")
        action.add_argument("--correlation-id", help="a free string the result event echoes (default with --wait: new)")
        waiting = action.add_argument_group("waiting for the outcome")
        waiting.add_argument("--wait", action="store_true", help="wait for the result event and print the outcome")
        waiting.add_argument(
            "--timeout",
            type=positive(float),
            default=DEFAULT_WAIT_SECONDS,
            help=f"seconds to wait (default {DEFAULT_WAIT_SECONDS:.0f})",
        )
        waiting.add_argument(
            "--result-bus", help=f"the stack's ResultEventBusName (default: ${RESULT_BUS_VARIABLE}, else default)"
        )
        waiting.add_argument("--result-source", help=f"the stack's ResultEventSource (default {RESULT_SOURCE})")
        waiting.add_argument("--json", action="store_true", help="print the result event's detail as JSON")
        action.set_defaults(run=run_send)

    validate = _command(
        commands,
        "validate",
        None,
        "llmobs-actions validate events/sqs-clone-dataset.json",
        help="check a message, an EventBridge event or an SQS event file",
    )
    validate.add_argument("file", type=Path, help="a JSON file: an action, an EventBridge event or an SQS event")
    validate.set_defaults(run=run_validate)

    dlq = commands.add_parser(
        "dlq",
        help="the dead-letter queue",
        description="What is in the dead-letter queue and why (list), and back to its queue (redrive).",
        epilog=_examples(
            "llmobs-actions dlq list --dlq-url $DLQ_URL",
            "llmobs-actions dlq redrive --dlq-url $DLQ_URL --queue-url $QUEUE_URL --error-class transient --yes",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    listing.add_argument("--max", type=positive(int), default=1000, help="read at most this many (default 1000)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(run=run_dlq_list)
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
    redrive.add_argument(
        "--error-class",
        action="append",
        default=[],
        type=error_class,
        help=f"only this class (repeatable): {', '.join(ERROR_CLASSES)}, or an EventBridge or Lambda code",
    )
    redrive.add_argument("--older-than", type=duration, help="only those dead-lettered longer ago (30m, 2h, 1d)")
    redrive.add_argument("--include-invalid", action="store_true", help="invalid messages too (they fail again)")
    redrive.add_argument("--max-per-second", type=positive(float), help="move at most this many a second")
    redrive.add_argument("--dry-run", action="store_true", help="say what would move, move nothing")
    redrive.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    redrive.add_argument("--no-wait", action="store_true", help="with a move task: start it and return")
    redrive.set_defaults(run=run_dlq_redrive)

    environment = _command(
        commands,
        "env",
        None,
        'eval "$(llmobs-actions env --stack-name llmobs-actions-dev)"',
        help="print the export lines that point this command at a deployed stack (its outputs)",
    )
    environment.add_argument("--stack-name", required=True, help="the stack sam deploy made")
    environment.set_defaults(run=run_env)

    invoke = _command(
        commands,
        "invoke",
        None,
        "llmobs-actions invoke events/sqs-delete-experiments.json",
        help="run the handler once, here, on an event file (like sam local invoke)",
    )
    invoke.add_argument("event", type=Path, help="an event file, as sam local invoke -e takes it")
    invoke.add_argument(
        "--timeout", type=positive(int), help="the deadline in seconds (default: template.yaml's FunctionTimeout)"
    )
    invoke.add_argument("--keep-ids", action="store_true", help="keep the file's message and event ids")
    invoke.set_defaults(run=run_invoke)
    return parser


def _command(
    commands: Any, name: str, action: str | None, *examples: str, help: str | None = None
) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with runnable examples."""
    epilog = _examples(*examples)
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help or action, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    if action:
        parser.set_defaults(action=action)
    return parser


def _project(parser: argparse.ArgumentParser) -> None:
    project = parser.add_mutually_exclusive_group(required=True)
    project.add_argument("--project-id", help="the project")
    project.add_argument("--project-name", help="the project's exact name, instead of its id")


def _dataset(parser: argparse.ArgumentParser, *, required: bool) -> None:
    dataset = parser.add_mutually_exclusive_group(required=required)
    dataset.add_argument("--dataset-id", help="the dataset")
    dataset.add_argument("--dataset-name", help="the dataset's exact name in the project, instead of its id")


def _selectors(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--older-than-days", type=int, help="only those created more than N days ago")
    parser.add_argument("--name-prefix", help="only those whose name starts so")
    parser.add_argument("--keep-newest", type=int, help="of those, keep the newest K")
    parser.add_argument("--max-deletions", type=int, help="refuse rather than delete more (default 100)")


def _examples(*examples: str) -> str:
    return "examples:\n" + "\n".join(f"  {example}" for example in examples)


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
