"""`send`: an action built from flags, checked against the contract, sent to the queue or the bus; with
`--wait`, its outcome (send --wait's watch is result_watch.py)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import uuid
from typing import Any

from llmobs_actions.cli.output import (
    DEFAULT_DETAIL_TYPE,
    DEFAULT_SOURCE,
    QUEUE_URL_VARIABLE,
    RESULT_BUS_VARIABLE,
    CliError,
    client,
    required,
)
from llmobs_actions.contract import InvalidAction, parse_action
from llmobs_actions.result_watch import ResultWatch, WatchError
from llmobs_actions.results import DEFAULT_SOURCE as RESULT_SOURCE

_PROBE_SECONDS = 30.0
_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def send(args: argparse.Namespace) -> int:
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
        "version",
        "source_uri",
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
        client("events"), client("sqs"), bus, action["correlation_id"], source=args.result_source or RESULT_SOURCE
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
    print(json.dumps(detail) if args.json else outcome_line(detail))
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
        result = client("events").put_events(Entries=[entry])["Entries"][0]
        if "EventId" not in result:
            raise CliError(f"EventBridge refused the event: {result.get('ErrorCode')}: {result.get('ErrorMessage')}")
        return str(result["EventId"])
    queue_url = required(args.queue_url, QUEUE_URL_VARIABLE, "--queue-url")
    return str(client("sqs").send_message(QueueUrl=queue_url, MessageBody=body)["MessageId"])


def outcome_line(detail: dict[str, Any]) -> str:
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
    if "manifest_uri" in result:
        where = "already in the bucket" if result.get("already_there") else "exported"
        return (
            f"done{dry}: {where}: version {result.get('version')} ({result.get('record_count')} records), "
            f"{result['manifest_uri']}{again}"
        )
    counts = ", ".join(
        f"{k.replace('_', ' ')} {v}" for k, v in result.items() if type(v) is int and k != "to_delete_not_listed"
    )
    lines = [f"done{dry}: {detail.get('action')}: {counts or 'nothing to report'}{again}"]
    if isinstance(result.get("spared"), dict):
        lines.append("  spared: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in result["spared"].items()))
    listed = result.get("to_delete_listed")
    if isinstance(listed, list) and listed:
        lines.append(f"  {'would delete' if dry else 'deleted'}:")
        lines += [f"    {item.get('id')}  {item.get('name')!r}" for item in listed if isinstance(item, dict)]
        if result.get("to_delete_not_listed"):
            lines.append(f"    and {result['to_delete_not_listed']} more")
    return "\n".join(lines)


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
