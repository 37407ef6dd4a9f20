"""Run the real handler on event files (events/*.json) over the local stack and report each record:
the Docker-free stand-in for `sam local invoke -e` (`make demo EVENT=events/x.json`)."""

from __future__ import annotations

import io
import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmobs_actions.messages import parse_timestamp
from llmobs_actions.templates import render
from local.report import wrapped

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"


def run(files: list[Path], show_logs: bool = False) -> int:
    """Returns the number of records left for retry (0 when every record was settled)."""
    from local.lambda_context import LambdaContext  # imported late: --help stays instant
    from local.stack import local_stack

    with local_stack() as (resources, emulator):
        from llmobs_actions import handler, observability

        handler.processor.cache_clear()  # built from this stack's environment, not an earlier one

        log_stream = io.StringIO()
        observability.logger.registered_handler.setStream(log_stream)  # type: ignore[attr-defined]
        logging.getLogger("aws_lambda_powertools").setLevel(logging.CRITICAL)

        print(f"local stack: moto {resources.endpoint}, Datadog emulator {emulator.url}\n")
        problems = 0
        for path in files:
            event = json.loads(path.read_text())
            known_datasets = set(emulator.datasets)
            metrics_out = io.StringIO()
            stdout, sys.stdout = sys.stdout, metrics_out  # EMF metrics are printed; keep the report readable
            try:
                response: Any = handler.lambda_handler(event, LambdaContext())  # type: ignore[arg-type]
                raised = None
            except Exception as error:  # a direct invocation that should be retried raises by design
                response, raised = None, error
            finally:
                sys.stdout = stdout
            problems += report_file(path, event, response, raised, resources, emulator, known_datasets)
            if show_logs:
                print(log_stream.getvalue())
            log_stream.seek(0)
            log_stream.truncate()

        dead = resources.dead_letters()
        print(f"dead-letter queue: {len(dead)} message(s)")
        for message in dead:
            attributes = message["attributes"]
            print(f"  {attributes.get('source_message_id', '?')[:36]:36}  {attributes.get('error_class', '?')}")
            print(wrapped(attributes.get("error_message", ""), indent=6))
        print(f"\n{'OK' if problems == 0 else f'{problems} record(s) left for retry'}")
        return problems


def report_file(
    path: Path,
    event: dict[str, Any],
    response: Any,
    raised: Exception | None,
    resources: Any,
    emulator: Any,
    known_datasets: set[str],
) -> int:
    records = event.get("Records")
    kind = f"SQS batch of {len(records)}" if records is not None else "direct invocation"
    print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}  ({kind})")
    dead = {m["attributes"].get("source_message_id"): m["attributes"] for m in resources.dead_letters()}
    new_datasets = [d for d in emulator.datasets.values() if d.id not in known_datasets]
    failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
    messages = (
        [(r["messageId"], r["body"], r.get("attributes", {}).get("SentTimestamp")) for r in records]
        if records is not None
        else [(event.get("id") or "demo-request", json.dumps(event), None)]
    )
    retries = 0
    for message_id, body, sent_ms in messages:
        action = describe_action(body)
        if message_id in dead:
            reason = dead[message_id]
            outcome = f"dead-lettered: {reason['error_class']}: {reason['error_message']}"
        elif message_id in failed or raised is not None:
            retries += 1
            outcome = f"retry later: {raised or 'reported in batchItemFailures'}"
        else:
            outcome = "done: " + what_was_done(action, new_datasets, emulator, request_time(body, sent_ms))
        print(f"  {message_id[:36]:36}  {str(action.get('action', '?'))[:40]}")
        print(wrapped(outcome, indent=6))
    print()
    return retries


def describe_action(body: str) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        return {}
    if isinstance(document, dict) and "detail" in document and "detail-type" in document:
        document = document["detail"]
    return document if isinstance(document, dict) else {}


def request_time(body: str, sent_ms: object = None) -> datetime:
    """The time a message's request is for, as the function reads it: the action's event_time, else its
    EventBridge event's time, else when SQS got it, else now."""
    sent = datetime.fromtimestamp(int(str(sent_ms)) / 1000, UTC) if str(sent_ms or "").isdigit() else None
    try:
        document = json.loads(body)
    except ValueError:
        return sent or datetime.now(UTC)
    envelope = document if isinstance(document, dict) else {}
    action = envelope.get("detail") if "detail-type" in envelope else envelope
    stamp = (action.get("event_time") if isinstance(action, dict) else None) or envelope.get("time")
    return parse_timestamp(stamp if isinstance(stamp, str) else None) or sent or datetime.now(UTC)


def what_was_done(action: dict[str, Any], new_datasets: list[Any], emulator: Any, when: datetime | None = None) -> str:
    if action.get("action") in ("prune_experiments", "prune_datasets"):
        return "dry run: nothing deleted" if action.get("dry_run") else "pruned"
    if action.get("action") == "delete_datasets":
        ids = action.get("dataset_ids", [])
        return f"deleted {sum(1 for i in ids if emulator.live_dataset(i) is None)} dataset(s)"
    if action.get("action") == "clone_dataset":
        wanted = render(str(action.get("name")), when or datetime.now(UTC), lambda: "golden")
        made = [d for d in new_datasets if d.name == wanted]
        if made:
            return (
                f"cloned {str(action.get('dataset_id') or action.get('dataset_name'))[:8]}… as {made[0].id[:8]}… "
                f"{made[0].name!r} ({len(made[0].records)} records)"
            )
        return "nothing cloned (dry run or adopted)"
    if action.get("action") == "delete_experiments":
        gone = [i for i in action.get("experiment_ids", []) if getattr(emulator.experiments.get(i), "deleted_at", None)]
        return f"deleted {len(gone)} experiment(s): {', '.join(i[:8] + '…' for i in gone)}"
    return ""
