"""`make demo`: llmobs-actions end to end on the local stack, no AWS or Datadog account, no Docker.

Starts moto (SQS, Secrets Manager, DynamoDB, EventBridge; queues, rule and table from template.yaml) and
the Datadog emulator, seeds a project, publishes a realistic mix of messages through SQS and EventBridge,
runs the function in its own process behind a Lambda Runtime API (awslambdaric) while a poller plays the
SQS event source mapping, and reports what became of every message: its outcome, the result event a
rule on the result bus delivered, and for the Step Functions-style producer its task's answer. Exit
code 0 only when every message reached the outcome the demo expected and announced it once.

`make demo EVENT=events/x.json` runs one event file instead: the stand-in for `sam local invoke -e`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from llmobs_actions.messages import parse_timestamp
from llmobs_actions.results import FAILED, SUCCEEDED
from llmobs_actions.templates import render
from local.event_files import EVENTS
from local.report import WIDTH, short, wrapped


@dataclass
class Scenario:
    label: str
    path: str  # how the message travels
    expect: str  # "done" or the error_class it must be dead-lettered with
    marker: str  # a string this message's body contains (its message id finds it when it has one)
    duplicate: bool = False  # a second delivery of an earlier scenario's request
    message_id: str = ""
    task_token: str = ""  # a Step Functions task waiting for this message's outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--event", type=Path, help="run one event file (like `sam local invoke -e`)")
    parser.add_argument("--events", action="store_true", help="run every file in events/")
    parser.add_argument("--logs", action="store_true", help="print the function's JSON log lines too")
    args = parser.parse_args(argv)
    if args.event or args.events:
        from local.event_files import run

        return 0 if run([args.event] if args.event else sorted(EVENTS.glob("*.json")), args.logs) == 0 else 1
    return run_scenarios(args.logs)


def run_scenarios(show_logs: bool) -> int:
    import boto3

    from local.datadog_emulator import Fault
    from local.poller import Poller
    from local.runtime_api import LambdaRuntime
    from local.scheduler import scheduled_input
    from local.stack import DATASET_ID, EXPERIMENT_IDS, PROJECT_ID, local_stack

    started = time.monotonic()
    with local_stack() as (aws, emulator), tempfile.TemporaryDirectory() as scratch:
        flaky = emulator.add_dataset(PROJECT_ID, "flaky-source", records=3)
        for age in (40, 55, 70, 85, 100, 115):  # last quarter's experiments, for the retention scene
            created = (datetime.now(UTC) - timedelta(days=age)).isoformat(timespec="seconds").replace("+00:00", "Z")
            emulator.add_experiment(PROJECT_ID, DATASET_ID, f"weekly-eval-{age}d", created_at=created)
        # The snapshot lifecycle: last month's nightly snapshots, one kept for a report, one a live eval uses.
        snapshots = {}
        for age in range(31, 37):
            created = (datetime.now(UTC) - timedelta(days=age)).isoformat(timespec="seconds").replace("+00:00", "Z")
            metadata = {"keep": True, "why": "Q3 report baseline"} if age == 35 else None
            snapshots[age] = emulator.add_dataset(
                PROJECT_ID, f"golden-snapshot-{age}d", records=2, metadata=metadata, created_at=created
            ).id
        emulator.add_experiment(PROJECT_ID, snapshots[33], "regression-eval")
        stray = emulator.add_dataset(PROJECT_ID, "scratch copy (delete me)", records=1).id
        for name, runs in (("nightly-eval-a", 4), ("nightly-eval-b", 3)):
            for age in range(1, runs + 1):
                created = (datetime.now(UTC) - timedelta(days=age)).isoformat(timespec="seconds").replace("+00:00", "Z")
                emulator.add_experiment(PROJECT_ID, DATASET_ID, name, created_at=created)
        emulator.inject(Fault(status=500, times=1, path_contains=f"/{flaky.id}/clone"))
        emulator.inject(
            Fault(status=429, times=1, path_contains="/experiments/delete", headers={"X-RateLimit-Reset": "2"})
        )

        def send(body: object) -> str:
            text = body if isinstance(body, str) else json.dumps(body)
            return str(aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=text)["MessageId"])

        def publish(detail: dict[str, Any]) -> str:
            pattern = aws.values.event_pattern
            entry = {
                "Source": pattern["source"][0],
                "DetailType": pattern["detail-type"][0],
                "Detail": json.dumps(detail),
                "EventBusName": aws.values.event_bus_name,
            }
            return str(boto3.client("events").put_events(Entries=[entry])["Entries"][0]["EventId"])

        clone = {"action": "clone_dataset", "project_id": PROJECT_ID, "dataset_id": DATASET_ID}
        assert aws.front is not None
        # What a state machine's sqs:sendMessage.waitForTaskToken step puts in the message ($$.Task.Token).
        task_token = aws.front.task_tokens.issue(timeout_seconds=300)
        # The samconfig example's ScheduledAction, as Scheduler delivers tonight's run: at least once.
        nightly = json.dumps(
            clone
            | {
                "name": "golden-{event_time:%Y-%m-%d}",
                "description": "nightly snapshot",
                "idempotency_key": "golden-<aws.scheduler.scheduled-time>",
                "event_time": "<aws.scheduler.scheduled-time>",
            }
        )
        run = datetime.now(UTC).replace(hour=3, minute=0, second=0, microsecond=0)
        scenarios: list[tuple[Scenario, Callable[[], str]]] = [
            (
                Scenario("nightly snapshot (name template)", "SQS (Scheduler)", "done", "golden-{event_time"),
                lambda: send(scheduled_input(nightly, run, attempt=1)),
            ),
            (
                Scenario("the same run, delivered again", "SQS (Scheduler)", "done", "golden-{event_time", True),
                lambda: send(scheduled_input(nightly, run, attempt=2)),
            ),
            (
                Scenario("retention: prune older than 30 days", "SQS", "done", "prune_experiments"),
                lambda: send(
                    {
                        "action": "prune_experiments",
                        "project_id": PROJECT_ID,
                        "older_than_days": 30,
                        "keep_newest": 1,
                        "max_deletions": 50,
                    }
                ),
            ),
            (
                Scenario("snapshot requested by an event", "EventBridge rule -> SQS", "done", "golden (release 4.2)"),
                lambda: publish(clone | {"name": "golden (release 4.2)"}),
            ),
            (
                Scenario("retention clean-up, throttled once", "SQS", "done", EXPERIMENT_IDS[0]),
                lambda: send({"action": "delete_experiments", "experiment_ids": EXPERIMENT_IDS}),
            ),
            (
                Scenario("snapshot during a Datadog outage", "SQS", "done", "flaky copy"),
                lambda: send(clone | {"dataset_id": flaky.id, "name": "flaky copy"}),
            ),
            (
                Scenario(
                    "snapshot for a waiting state machine",
                    "SQS (Step Functions)",
                    "done",
                    "eval-run-88",
                    task_token=task_token,
                ),
                lambda: send(
                    clone | {"name": "eval-run-88 input", "correlation_id": "eval-run-88", "task_token": task_token}
                ),
            ),
            (
                Scenario("snapshot retention (30 days)", "SQS (Scheduler)", "done", "golden-snapshot-"),
                lambda: send(
                    {
                        "action": "prune_datasets",
                        "project_id": PROJECT_ID,
                        "name_prefix": "golden-snapshot-",
                        "older_than_days": 30,
                        "max_deletions": 10,
                    }
                ),
            ),
            (
                Scenario("delete a scratch dataset by id", "SQS", "done", stray),
                lambda: send({"action": "delete_datasets", "project_id": PROJECT_ID, "dataset_ids": [stray]}),
            ),
            (
                Scenario("eval runs: newest 2 of each name", "SQS", "done", "nightly-eval-"),
                lambda: send(
                    {
                        "action": "prune_experiments",
                        "project_id": PROJECT_ID,
                        "name_prefix": "nightly-eval-",
                        "keep_newest_per_name": 2,
                    }
                ),
            ),
            (
                Scenario("snapshot addressed by names", "SQS", "done", "golden by name"),
                lambda: send(
                    {
                        "action": "clone_dataset",
                        "project_name": "evals",
                        "dataset_name": "golden",
                        "name": "golden by name",
                    }
                ),
            ),
            (
                Scenario("producer typo", "SQS", "invalid", "datset_id"),
                lambda: send(
                    {"action": "clone_dataset", "project_id": PROJECT_ID, "datset_id": DATASET_ID, "name": "typo"}
                ),
            ),
            (
                Scenario("snapshot of a deleted dataset", "SQS", "rejected", "deleted-dataset"),
                lambda: send(clone | {"dataset_id": "deleted-dataset", "name": "ghost"}),
            ),
        ]
        # Scheduler's second delivery of tonight's run comes once the first is done, as a redelivery does:
        # which of the two is the duplicate is then decided, not raced between two workers of one batch.
        first_deliveries = [(s, p) for s, p in scenarios if not s.duplicate]
        redeliveries = [(s, p) for s, p in scenarios if s.duplicate]
        for scenario, publish_it in first_deliveries:
            scenario.message_id = publish_it()

        # LambdaRuntime passes this process's environment (the local stack's) on to the function.
        environment = {"RETRY_BASE_DELAY_SECONDS": "1"}  # visible back-off, short enough for a demo
        log_path = Path(scratch) / "function.log"
        with (
            log_path.open("w") as log,
            LambdaRuntime(
                environment, aws.values.function_timeout_seconds, function_name="llmobs-actions-demo", log=log
            ) as runtime,
        ):
            poller = Poller(aws.sqs, aws.queue_url, aws.queue_arn, runtime.invoke, aws.values.batch_size)
            drained = poller.run_until_empty(timeout_seconds=60)
            for scenario, publish_it in redeliveries:
                scenario.message_id = publish_it()
            drained = poller.run_until_empty(timeout_seconds=60) and drained

        dead = {d["attributes"].get("source_message_id", d["id"]): d for d in aws.dead_letters()}
        announced: dict[str, list[dict[str, Any]]] = {}
        for event in aws.result_events():
            announced.setdefault(event["detail"]["message_id"], []).append(event)
        print(
            f"local stack: moto {aws.endpoint}, Datadog emulator {emulator.url},\n"
            f"function in its own process (awslambdaric), queue {aws.values.queue_name}\n"
        )
        failures = 0
        for scenario, _ in scenarios:
            delivery = poller.deliveries.get(scenario.message_id) or next(
                (d for d in poller.deliveries.values() if scenario.marker in d.body), None
            )
            outcome, detail = _outcome(delivery, dead, emulator, scenario)
            events = announced.get(delivery.message_id, []) if delivery else []
            told, told_ok = _result_line(events, scenario)
            if scenario.task_token:
                task = aws.front.task_tokens.task(scenario.task_token)
                answer = task.output.get("result", {}).get("new_dataset_id", "") if task.output else task.error
                told += f"; task {task.status} ({answer})"
                told_ok = told_ok and task.status == ("SUCCEEDED" if scenario.expect == "done" else "FAILED")
            ok = outcome == scenario.expect and told_ok
            failures += not ok
            receives = delivery.receives if delivery else 0
            print(f"{'ok ' if ok else 'BAD'} {scenario.label:37} {scenario.path:24} {receives} receive(s)")
            print(wrapped(f"{outcome}: {detail}"))
            print(wrapped(f"announced: {told}"))
        print(
            f"\n{len(scenarios)} messages: {sum(1 for s, _ in scenarios if s.expect == 'done')} expected done, "
            f"{sum(1 for s, _ in scenarios if s.expect != 'done')} expected dead-lettered, "
            f"{sum(len(e) for e in announced.values())} result events;\n"
            f"{poller.invocations} invocations, {time.monotonic() - started:.1f} s, "
            f"{'queue drained' if drained else 'QUEUE NOT DRAINED'}"
        )
        print(f"\ndead-letter queue ({len(dead)}):")
        for message in dead.values():
            attributes = message["attributes"]
            said = f"{attributes.get('error_class', 'redriven'):9} http {attributes.get('http_status', '-'):3}"
            print(wrapped(f"{said}  {attributes.get('error_message', '')}", indent=2))
            print(wrapped(f"body: {short(message['body'], WIDTH - 12)}", indent=4))
        if show_logs:
            print("\nfunction log:\n" + log_path.read_text())
        verdict = "every message reached its expected outcome" if failures == 0 and drained else "UNEXPECTED OUTCOMES"
        print(f"\n{verdict}")
        return 0 if failures == 0 and drained else 1


def _result_line(events: list[dict[str, Any]], scenario: Scenario) -> tuple[str, bool]:
    """What the result event said, and whether it is the one event this outcome should announce."""
    if len(events) != 1:
        return f"{len(events)} result events (expected 1)", False
    [event] = events
    detail = event["detail"]
    if detail["status"] == "succeeded":
        result = detail["result"] or {}
        said = ", ".join(f"{k}={result[k]}" for k in _SHOWN if k in result) + ("; duplicate" * detail["duplicate"])
    else:
        said = f"{detail['error']['class']} http {detail['error']['http_status'] or '-'}"
    expected_type = SUCCEEDED if scenario.expect == "done" else FAILED
    return f"{event['detail-type']} ({said})", event["detail-type"] == expected_type


_SHOWN = ("new_dataset_id", "name", "deleted", "already_gone", "matching", "to_delete", "spared", "resolved")


def _outcome(delivery: Any, dead: dict[str, Any], emulator: Any, scenario: Scenario) -> tuple[str, str]:
    if delivery is None:
        return "missing", "the poller never received it"
    if delivery.message_id in dead:
        attributes = dead[delivery.message_id]["attributes"]
        return attributes.get("error_class", "redriven"), attributes.get("error_message", "")[:70]
    if not delivery.deleted:
        return "pending", " / ".join(delivery.responses)
    action = json.loads(delivery.body)
    action = action.get("detail", action)
    if action["action"] == "prune_experiments" and action.get("keep_newest_per_name"):
        left = sorted(
            e.name for e in emulator.experiments.values() if e.name.startswith("nightly-") and not e.deleted_at
        )
        return "done", f"pruned {7 - len(left)} of 7 runs; left: {', '.join(left)}"
    if action["action"] == "prune_experiments":
        pruned = [e for e in emulator.experiments.values() if e.name.startswith("weekly-eval-") and e.deleted_at]
        return "done", f"pruned {len(pruned)} of 6 old experiments (kept the newest)"
    if action["action"] == "prune_datasets":
        old = [d for d in emulator.datasets.values() if d.name.startswith("golden-snapshot-")]
        left = sorted(d.name for d in old if d.deleted_at is None)
        return "done", f"pruned {len(old) - len(left)} of {len(old)} snapshots; spared {', '.join(left)}"
    if action["action"] == "delete_datasets":
        deleted = [i for i in action["dataset_ids"] if emulator.live_dataset(i) is None]
        return "done", f"deleted {len(deleted)} dataset(s)"
    if action["action"] == "clone_dataset":
        when = parse_timestamp(action.get("event_time")) or datetime.now(UTC)
        made = emulator.datasets_named(render(action["name"], when, lambda: "golden"))
        if not made:
            return "done?", "no dataset was created"
        if scenario.duplicate:  # acknowledged without a second clone
            return ("done" if len(made) == 1 else "cloned twice"), f"duplicate: {len(made)} dataset {made[0].name!r}"
        return "done", f"cloned -> {made[0].name!r} {made[0].id[:8]}… ({len(made[0].records)} records)"
    deleted = [i for i in action["experiment_ids"] if emulator.experiments[i].deleted_at]
    return "done", f"deleted {len(deleted)} experiment(s)"


if __name__ == "__main__":
    sys.exit(main())
