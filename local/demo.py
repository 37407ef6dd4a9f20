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
import gzip
import json
import re
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
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
    phase: int = 0  # sent once every message of the phases before it is done (what it depends on is done)
    direct: bool = False  # no message: a call straight to Datadog, as a producer's script makes one
    called: tuple[str, str] | None = None  # a direct call's outcome and detail, as they stood right after it


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
    from local.scheduler import SCHEDULE_ARN, scheduled_input
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
        # The backup chain, in a project of its own: its golden dataset had 20 records last week (the version
        # last week's eval runs used) and 24 since. Tonight's backup exports both versions; a script's
        # batch_update then deletes most records, a restore brings last night's version back (exporting the
        # mistaken one first), and last week's export is imported into a new dataset.
        support = emulator.add_project("support")
        golden = emulator.add_dataset(support, "golden", records=0, created_at=_days_ago(14))
        golden.replace_current(_support_records(20), golden.created_at)
        emulator.use_version(golden.id, golden.current_version, at=_days_ago(7))
        golden.new_version(_support_records(24, revised=(3, 11)), _days_ago(2))
        backups = Backups(boto3.client("s3"), aws.bucket_name, aws.values.backup_prefix, support, golden)
        backup = json.dumps(
            {
                "action": "backup_datasets",
                "project_id": support,
                "idempotency_key": "backup-<aws.scheduler.scheduled-time>",
                "event_time": "<aws.scheduler.scheduled-time>",
            }
        )
        backup_arn = SCHEDULE_ARN.replace("-nightly", "-backup")
        scenarios: list[tuple[Scenario, Callable[[], str | tuple[str, str]]]] = [
            (
                Scenario("nightly snapshot (name template)", "SQS (Scheduler)", "done", "golden-{event_time"),
                lambda: send(scheduled_input(nightly, run, attempt=1)),
            ),
            (
                Scenario(
                    "the same run, delivered again", "SQS (Scheduler)", "done", "golden-{event_time", True, phase=1
                ),
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
            (
                Scenario("nightly backup", "SQS (Scheduler)", "done", "backup_datasets", phase=1),
                lambda: send(scheduled_input(backup, run.replace(hour=4), schedule_arn=backup_arn)),
            ),
            (
                Scenario("a mistaken batch_update", "Datadog API (a script)", "done", "", phase=2, direct=True),
                lambda: _mistaken_batch_update(emulator, golden, keep=3),
            ),
            (
                Scenario("restore last night's version", "SQS", "done", "restore_dataset_version", phase=2),
                lambda: send(
                    {
                        "action": "restore_dataset_version",
                        "project_id": support,
                        "dataset_id": golden.id,
                        "version": backups.backed_up[-1],
                    }
                ),
            ),
            (
                Scenario("import last week's export", "SQS", "done", "import_dataset", phase=2),
                lambda: send(
                    {
                        "action": "import_dataset",
                        "project_id": support,
                        "source_uri": backups.uri(backups.folder(backups.backed_up[0]) + "manifest.json"),
                        "name": "golden (last week)",
                    }
                ),
            ),
        ]

        # Each phase is sent once the one before it is done. Scheduler's second delivery of tonight's run
        # comes once the first is done, as a redelivery does: which of the two is the duplicate is then
        # decided, not raced between two workers of one batch. The backup chain runs a scene a phase: the
        # backup, then the script's mistake (a call, at once) and what repairs it, each after what it needs.
        def send_phase(phase: int) -> None:
            for scenario, publish_it in scenarios:
                if scenario.phase == phase:
                    sent = publish_it()
                    if isinstance(sent, tuple):
                        scenario.called = sent
                    else:
                        scenario.message_id = sent

        phases = sorted({scenario.phase for scenario, _ in scenarios})
        send_phase(phases[0])

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
            for phase in phases[1:]:
                send_phase(phase)
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
            if scenario.direct:
                outcome, detail = scenario.called or ("missing", "the call was never made")
                ok = outcome == scenario.expect
                failures += not ok
                print(f"{'ok ' if ok else 'BAD'} {scenario.label:37} {scenario.path:24} no message")
                print(wrapped(f"{outcome}: {detail}"))
                print(wrapped("announced: nothing (no message went through the function, so no result event)"))
                continue
            delivery = poller.deliveries.get(scenario.message_id) or next(
                (d for d in poller.deliveries.values() if scenario.marker in d.body), None
            )
            outcome, detail = _outcome(delivery, dead, emulator, scenario, backups)
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
        messages = [s for s, _ in scenarios if not s.direct]
        calls = len(scenarios) - len(messages)
        print(
            f"\n{len(messages)} messages: {sum(1 for s in messages if s.expect == 'done')} expected done, "
            f"{sum(1 for s in messages if s.expect != 'done')} expected dead-lettered, "
            f"{sum(len(e) for e in announced.values())} result events;\n"
            f"{calls} call{'s' * (calls != 1)} straight to Datadog, {poller.invocations} invocations, "
            f"{time.monotonic() - started:.1f} s, "
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


_SHOWN = (
    "new_dataset_id",
    "name",
    "deleted",
    "already_gone",
    "matching",
    "to_delete",
    "spared",
    "resolved",
    "exported",
    "already_there",
    "failed",
    "records_exported",
    "restored_version",
    "exported_version",
    "record_count",
    "source_version",
)


def _outcome(
    delivery: Any, dead: dict[str, Any], emulator: Any, scenario: Scenario, backups: Backups
) -> tuple[str, str]:
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
    if action["action"] == "backup_datasets":
        return _backed_up(backups)
    if action["action"] == "restore_dataset_version":
        return _restored(emulator, backups, action["version"])
    if action["action"] == "import_dataset":
        return _imported(emulator, backups, action["name"])
    deleted = [i for i in action["experiment_ids"] if emulator.experiments[i].deleted_at]
    return "done", f"deleted {len(deleted)} experiment(s)"


# What an export keeps of a record, and what the backup scenes compare (the records API has no tags).
_RECORD_FIELDS = ("id", "input", "expected_output", "metadata")


@dataclass
class Backups:
    """The backup chain's dataset and the bucket its exports go to, read back for the scenes' outcomes."""

    s3: Any
    bucket: str
    prefix: str
    project_id: str
    dataset: Any  # the emulator's Dataset
    backed_up: list[int] = field(init=False)  # its versions as they stand now, before the nightly backup

    def __post_init__(self) -> None:
        self.backed_up = sorted(self.dataset.versions)

    def folder(self, version: int) -> str:
        return f"{self.prefix}{self.project_id}/{self.dataset.id}/v{version}/"

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def export(self, version: int) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The manifest and records of the bucket's export of `version` (None and [] when there is none)."""
        folder = self.folder(version)
        try:
            manifest = json.loads(self.s3.get_object(Bucket=self.bucket, Key=f"{folder}manifest.json")["Body"].read())
            data = self.s3.get_object(Bucket=self.bucket, Key=folder + manifest["records_object"])["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None, []
        return manifest, [json.loads(line) for line in gzip.decompress(data).splitlines() if line]


def _backed_up(backups: Backups) -> tuple[str, str]:
    """Every version the dataset had when the backup ran is in the bucket, its records as Datadog holds them."""
    counts = []
    for version in backups.backed_up:
        manifest, records = backups.export(version)
        if manifest is None:
            return "not exported", f"version {version} is not in {_short_ids(backups.uri(backups.folder(version)))}"
        if manifest["record_count"] != len(records) or not _same(records, backups.dataset.versions[version]):
            return "unequal", f"the export of version {version} differs from Datadog's records"
        counts.append(len(records))
    where = _short_ids(backups.uri(backups.folder(0).removesuffix("v0/")))
    listed = ", ".join(f"v{v} {n}" for v, n in zip(backups.backed_up, counts, strict=True))
    return "done", (
        f"exported {len(counts)} versions ({sum(counts)} records: {listed}) of {backups.dataset.name!r}, each as "
        f"Datadog holds it, to {where}"
    )


def _mistaken_batch_update(emulator: Any, dataset: Any, keep: int) -> tuple[str, str]:
    """A producer's script, meant to delete a few stale records, deletes all but `keep` of them: straight through
    Datadog's API (BatchUpdateLLMObsDataset), in a new version as batch_update makes by default."""
    from local.datadog_emulator import PREFIX
    from local.stack import API_KEY, APP_KEY

    before = len(dataset.records)
    doomed = [record["id"] for record in dataset.records[keep:]]
    body = {"data": {"type": "datasets", "id": dataset.id, "attributes": {"delete_records": doomed}}}
    request = urllib.request.Request(
        f"{emulator.url}{PREFIX}/{dataset.project_id}/datasets/{dataset.id}/batch_update",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"DD-API-KEY": API_KEY, "DD-APPLICATION-KEY": APP_KEY, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            status = answer.status
    except urllib.error.HTTPError as error:
        return f"http {error.code}", short(error.read().decode(errors="replace"), 70)
    left = len(dataset.records)
    return "done", (
        f"HTTP {status}: deleted {before - left} of {before} records; {dataset.name!r} now has {left} records "
        f"at version {dataset.current_version}"
    )


def _restored(emulator: Any, backups: Backups, version: int) -> tuple[str, str]:
    """The dataset holds `version`'s records again, and the version the restore replaced was exported before it."""
    dataset = backups.dataset
    if not _same(dataset.records, dataset.versions[version]):
        return "not restored", f"{dataset.name!r} has {len(dataset.records)} records at {dataset.current_version}"
    replaced = dataset.current_version - 1  # the restore made the current version
    manifest, records = backups.export(replaced)
    if manifest is None or not _same(records, dataset.versions[replaced]):
        return "not kept", f"version {replaced}, which the restore replaced, is not in the bucket as it was"
    # In the order the emulator served them: the replaced version's pages were read before the restore.
    mine = [r for r in emulator.requests if f"/datasets/{dataset.id}/" in r.path]
    served = [(r.method, r.path.rsplit("/", 1)[-1], r.query.get("filter[version]")) for r in mine]
    read = [n for n, call in enumerate(served) if call == ("GET", "records", [str(replaced)])]
    restore = [n for n, (method, last, _) in enumerate(served) if (method, last) == ("POST", "restore")]
    if not read or not restore or max(read) > min(restore):
        return "not first", f"version {replaced} was not read for its export before the restore"
    where = _short_ids(backups.uri(backups.folder(replaced) + "manifest.json"))
    return "done", (
        f"{dataset.name!r} back to {len(dataset.records)} records (version {dataset.current_version}, a copy of "
        f"version {version}); the mistaken version {replaced} ({len(records)} records) kept first, at {where}"
    )


def _imported(emulator: Any, backups: Backups, name: str) -> tuple[str, str]:
    """One new dataset of that name, its records those of the export and of the version exported."""
    made = [d for d in emulator.datasets_named(name) if d.project_id == backups.project_id]
    if len(made) != 1:
        return "done?", f"{len(made)} datasets named {name!r}"
    [dataset] = made
    version = backups.backed_up[0]
    _, exported = backups.export(version)
    if not (_same(dataset.records, exported) and _same(dataset.records, backups.dataset.versions[version])):
        return "unequal", f"{name!r} has {len(dataset.records)} records, not those of the export of version {version}"
    return "done", (
        f"new dataset {name!r} {dataset.id[:8]}…: {len(dataset.records)} records, equal to the export and to "
        f"version {version} of {backups.dataset.name!r} (ids, inputs, expected outputs, metadata)"
    )


def _same(records: list[dict[str, Any]], others: list[dict[str, Any]]) -> bool:
    """The same records, whatever their order: ids, inputs, expected outputs and metadata."""

    def kept(held: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(({f: record.get(f) for f in _RECORD_FIELDS} for record in held), key=lambda r: str(r["id"]))

    return kept(records) == kept(others)


def _short_ids(text: str) -> str:
    """Every UUID in `text` cut to its first 8 characters, as the report shows ids."""
    return re.sub(r"\b([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", r"\1…", text)


def _support_records(count: int, revised: tuple[int, ...] = ()) -> list[dict[str, Any]]:
    """A support assistant's golden records: `count` questions, the answers numbered in `revised` reworded."""
    topics = ("billing", "login", "shipping", "returns")
    return [
        {
            "id": f"faq-{n:02d}",
            "input": {"question": f"support question {n}", "topic": topics[n % len(topics)]},
            "expected_output": f"answer {n}" + (" (revised)" if n in revised else ""),
            "metadata": {"source": "support tickets", "revised": n in revised},
        }
        for n in range(count)
    ]


def _days_ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds").replace("+00:00", "Z")


if __name__ == "__main__":
    sys.exit(main())
