"""The snapshot lifecycle on the local stack: delete and prune datasets, protection, names for ids.

Every outcome is read twice: in the emulator's state (what Datadog holds afterwards) and in the result
event the function announced (what the producer learns), which is checked against the published schema.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from llmobs_actions import handler
from llmobs_actions.actions import ids_digest
from local.datadog_emulator import DatadogEmulator, Fault
from local.scheduler import scheduled_input
from tests.conftest import (
    DATASET_ID,
    EXPERIMENT_IDS,
    PROJECT_ID,
    ROOT,
    Aws,
    FakeLambdaContext,
    LogOutput,
    clone_action,
)
from tests.integration.delivery import handle, published

NOW = datetime.now(UTC)
PREFIX = "golden-snapshot-"
PROTECTED_AGE, IN_USE_AGE, ONCE_USED_AGE = 35, 33, 34


def stamp(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture
def snapshots(emulator: DatadogEmulator) -> dict[int, str]:
    """Forty nightly snapshots of the golden dataset, aged 0 to 39 days (and 12 hours): the one of day 35
    marked to be kept, the one of day 33 used by a live experiment, the one of day 34 by a deleted one."""
    ages = {}
    for age in range(40):
        metadata = {"keep": True, "why": "baseline of the Q3 report"} if age == PROTECTED_AGE else None
        dataset = emulator.add_dataset(
            PROJECT_ID, f"{PREFIX}{age:02d}", records=1, metadata=metadata, created_at=stamp(age + 0.5)
        )
        ages[age] = dataset.id
    emulator.add_experiment(PROJECT_ID, ages[IN_USE_AGE], "regression-eval")
    once = emulator.add_experiment(PROJECT_ID, ages[ONCE_USED_AGE], "old-eval")
    emulator.experiments[once].deleted_at = stamp(1)
    return ages


def gone(emulator: DatadogEmulator, snapshots: dict[int, str]) -> set[int]:
    return {age for age, dataset_id in snapshots.items() if emulator.live_dataset(dataset_id) is None}


def outcome(aws: Aws) -> dict[str, Any]:
    [event] = published(aws)
    detail: dict[str, Any] = event["detail"]
    return detail


def prune_datasets(**selector: object) -> dict[str, object]:
    return {"action": "prune_datasets", "project_id": PROJECT_ID} | selector


# --- prune_datasets --------------------------------------------------------------------------------


def test_a_prune_deletes_old_snapshots_but_spares_the_protected_one_and_the_one_in_use(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext, snapshots: dict[int, str]
) -> None:
    assert handle(aws, context, prune_datasets(name_prefix=PREFIX, older_than_days=30)) == {"batchItemFailures": []}

    assert gone(emulator, snapshots) == set(range(30, 40)) - {PROTECTED_AGE, IN_USE_AGE}
    assert emulator.live_dataset(DATASET_ID) is not None, "the source does not match the prefix"
    result = outcome(aws)["result"]
    assert result["matching"] == 10
    assert result["spared"] == {"newest": 0, "protected": 1, "unknown_age": 0, "in_use": 1}
    assert (result["to_delete"], result["deleted"]) == (8, 8)


def test_datasets_in_use_go_too_when_the_message_says_so_but_the_protected_one_never(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext, snapshots: dict[int, str]
) -> None:
    handle(aws, context, prune_datasets(name_prefix=PREFIX, older_than_days=30, include_datasets_in_use=True))

    assert gone(emulator, snapshots) == set(range(30, 40)) - {PROTECTED_AGE}
    assert outcome(aws)["result"]["spared"] == {"newest": 0, "protected": 1, "unknown_age": 0, "in_use": 0}
    assert emulator.calls("GET", "/experiments") == [], "no need to ask which datasets are in use"


def test_keep_newest_counts_only_what_could_have_been_deleted(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext, snapshots: dict[int, str]
) -> None:
    handle(aws, context, prune_datasets(name_prefix=PREFIX, older_than_days=30, keep_newest=3))

    # days 30-39 match; 35 is protected and 33 in use; of the rest, 30, 31 and 32 are the newest
    assert gone(emulator, snapshots) == {34, 36, 37, 38, 39}
    assert outcome(aws)["result"]["spared"] == {"newest": 3, "protected": 1, "unknown_age": 0, "in_use": 1}


def test_a_dry_run_prune_of_datasets_reports_and_deletes_nothing(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext, snapshots: dict[int, str]
) -> None:
    handle(aws, context, prune_datasets(name_prefix=PREFIX, older_than_days=30, dry_run=True))

    assert gone(emulator, snapshots) == set()
    assert emulator.calls("POST", "/datasets/delete") == []
    detail = outcome(aws)
    assert detail["dry_run"] is True
    assert (detail["result"]["to_delete"], detail["result"]["spared"]["protected"]) == (8, 1)


def test_a_dry_run_names_what_it_would_delete_twenty_at_most_and_its_summary_adds_up(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext, snapshots: dict[int, str]
) -> None:
    handle(aws, context, prune_datasets(name_prefix=PREFIX, older_than_days=1, keep_newest=2, dry_run=True))

    result = outcome(aws)["result"]
    # days 1-39 match: 35 protected, 33 in use, 1 and 2 the newest kept, 35 left to delete
    assert (result["matching"], result["to_delete"]) == (39, 35)
    assert result["matching"] == result["to_delete"] + sum(result["spared"].values())
    assert result["spared"] == {"newest": 2, "protected": 1, "unknown_age": 0, "in_use": 1}
    by_id = {dataset_id: f"{PREFIX}{age:02d}" for age, dataset_id in snapshots.items()}
    listed = result["to_delete_listed"]
    assert [item["name"] for item in listed] == [
        f"{PREFIX}{age:02d}" for age in [3, *range(4, 33), 34, *range(36, 40)]
    ][:20]
    assert all(by_id[item["id"]] == item["name"] for item in listed)
    assert result["to_delete_not_listed"] == 15
    assert gone(emulator, snapshots) == set()


def test_an_undated_dataset_is_spared_by_a_ranking_and_counted(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    emulator.add_dataset(PROJECT_ID, f"{PREFIX}undated", records=1, created_at="not a time")
    emulator.add_dataset(PROJECT_ID, f"{PREFIX}dated", records=1, created_at=stamp(3))
    emulator.add_dataset(PROJECT_ID, f"{PREFIX}older", records=1, created_at=stamp(4))
    handle(aws, context, prune_datasets(name_prefix=PREFIX, keep_newest=1, dry_run=True))

    result = outcome(aws)["result"]
    assert result["spared"] == {"newest": 1, "protected": 0, "unknown_age": 1, "in_use": 0}
    assert (result["matching"], result["to_delete"]) == (3, 1)
    assert [item["name"] for item in result["to_delete_listed"]] == [f"{PREFIX}older"]


def test_a_prune_of_datasets_past_its_cap_is_refused_whole(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext, snapshots: dict[int, str]
) -> None:
    handle(aws, context, prune_datasets(name_prefix=PREFIX, older_than_days=1, max_deletions=20))

    [dead] = aws.dead_letters()
    assert dead["attributes"]["error_class"] == "rejected"
    assert "matches 37 datasets to delete, more than max_deletions (20)" in dead["attributes"]["error_message"]
    assert gone(emulator, snapshots) == set()
    assert outcome(aws)["status"] == "failed"


def test_the_protection_key_is_the_deployments_choice(
    aws: Aws,
    emulator: DatadogEmulator,
    function_env: None,
    context: FakeLambdaContext,
    snapshots: dict[int, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROTECT_METADATA_KEY", "retain")
    handler.processor.cache_clear()
    emulator.datasets[snapshots[31]].metadata = {"retain": "true"}  # as a UI that saves text would write it

    handle(aws, context, prune_datasets(name_prefix=PREFIX, older_than_days=30, include_datasets_in_use=True))

    assert gone(emulator, snapshots) == set(range(30, 40)) - {31}, "keep: true no longer protects day 35"


def test_a_prune_reads_every_page_and_deletes_in_chunks(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    old = {emulator.add_dataset(PROJECT_ID, f"tmp-{n}", records=0, created_at=stamp(40)).id for n in range(230)}

    handle(aws, context, prune_datasets(name_prefix="tmp-", max_deletions=1000))

    assert all(emulator.live_dataset(dataset_id) is None for dataset_id in old)
    assert len(emulator.calls("GET", f"/{PROJECT_ID}/datasets")) == 3, "100 a page"
    assert [len(r.body["data"]["attributes"]["dataset_ids"]) for r in emulator.calls("POST", "/datasets/delete")] == [
        100,
        100,
        30,
    ]
    assert outcome(aws)["result"]["deleted"] == 230


def test_a_prune_of_datasets_names_a_selector(aws: Aws, function_env: None, context: FakeLambdaContext) -> None:
    handle(aws, context, prune_datasets(keep_newest=5))

    [dead] = aws.dead_letters()
    assert dead["attributes"]["error_class"] == "invalid"
    assert "give older_than_days or name_prefix" in dead["attributes"]["error_message"]


# --- delete_datasets ---------------------------------------------------------------------------------


def test_an_explicit_delete_deletes_a_protected_dataset_too(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext, snapshots: dict[int, str]
) -> None:
    ids = [snapshots[PROTECTED_AGE], snapshots[IN_USE_AGE], snapshots[2]]

    handle(aws, context, {"action": "delete_datasets", "project_id": PROJECT_ID, "dataset_ids": ids})

    assert gone(emulator, snapshots) == {PROTECTED_AGE, IN_USE_AGE, 2}
    [request] = emulator.calls("POST", "/datasets/delete")
    assert request.path.endswith(f"/{PROJECT_ID}/datasets/delete")
    assert request.body == {"data": {"type": "datasets", "attributes": {"dataset_ids": ids}}}
    result = outcome(aws)["result"]
    assert (result["deleted"], result["already_gone"]) == (3, 0)
    assert result["dataset_ids_sha256"] == ids_digest(ids), "a digest, never the ids"


def test_a_delete_retried_after_part_of_it_happened_finishes_the_rest(
    aws: Aws,
    emulator: DatadogEmulator,
    function_env: None,
    context: FakeLambdaContext,
    snapshots: dict[int, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emulator.refuse_deleting_gone_datasets = True  # a stricter Datadog refuses ids it already deleted
    monkeypatch.setenv("DELETE_CHUNK_SIZE", "1")
    handler.processor.cache_clear()
    # the first try deletes the first dataset, then meets an outage
    emulator.inject(Fault(status=503, times=1, path_contains="/datasets/delete", skip=1))
    ids = [snapshots[1], snapshots[2]]
    action = {"action": "delete_datasets", "project_id": PROJECT_ID, "dataset_ids": ids, "idempotency_key": "del-1"}
    first = handle(aws, context, action)
    assert len(first["batchItemFailures"]) == 1
    assert gone(emulator, snapshots) == {1}

    assert handle(aws, context, action, receive_count=2) == {"batchItemFailures": []}

    assert gone(emulator, snapshots) == {1, 2}
    result = outcome(aws)["result"]
    assert (result["deleted"], result["already_gone"]) == (1, 1)


def test_a_dry_run_delete_of_datasets_deletes_nothing(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext, snapshots: dict[int, str]
) -> None:
    action = {"action": "delete_datasets", "project_id": PROJECT_ID, "dataset_ids": [snapshots[1]], "dry_run": True}
    handle(aws, context, action)

    assert gone(emulator, snapshots) == set()
    assert emulator.calls("POST", "/datasets/delete") == []
    assert outcome(aws)["result"]["to_delete"] == 1


# --- prune_experiments: protection, the newest of each name --------------------------------------------


@pytest.fixture
def runs(emulator: DatadogEmulator) -> dict[str, tuple[str, int]]:
    """Five runs of eval-a and three of eval-b, a day apart; the oldest eval-a run is marked to be kept."""
    found = {}
    for name, count in (("eval-a", 5), ("eval-b", 3)):
        for age in range(count):
            metadata = {"keep": True} if (name, age) == ("eval-a", 4) else None
            experiment_id = emulator.add_experiment(
                PROJECT_ID, DATASET_ID, name, created_at=stamp(age + 1), metadata=metadata
            )
            found[experiment_id] = (name, age)
    return found


def deleted_runs(emulator: DatadogEmulator, runs: dict[str, tuple[str, int]]) -> set[tuple[str, int]]:
    return {run for experiment_id, run in runs.items() if emulator.experiments[experiment_id].deleted_at}


def test_the_newest_runs_of_each_experiment_name_survive_and_a_protected_one_too(
    aws: Aws,
    emulator: DatadogEmulator,
    function_env: None,
    context: FakeLambdaContext,
    runs: dict[str, tuple[str, int]],
) -> None:
    action = {
        "action": "prune_experiments",
        "project_id": PROJECT_ID,
        "name_prefix": "eval-",
        "keep_newest_per_name": 2,
    }
    handle(aws, context, action)

    assert deleted_runs(emulator, runs) == {("eval-a", 2), ("eval-a", 3), ("eval-b", 2)}
    result = outcome(aws)["result"]
    assert result["spared"] == {"newest": 0, "protected": 1, "unknown_age": 0, "newest_per_name": 4}
    assert result["deleted"] == 3
    assert not any(emulator.experiments[i].deleted_at for i in EXPERIMENT_IDS), "other names: no match"


def test_keep_newest_and_keep_newest_per_name_rank_the_same_runs(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    # GIVEN runs a-new, a-old and b
    a_new = emulator.add_experiment(PROJECT_ID, DATASET_ID, "r-a", created_at=stamp(1))
    a_old = emulator.add_experiment(PROJECT_ID, DATASET_ID, "r-a", created_at=stamp(3))
    b = emulator.add_experiment(PROJECT_ID, DATASET_ID, "r-b", created_at=stamp(2))

    # WHEN the newest run overall and the newest run of each name are kept
    action = {"action": "prune_experiments", "project_id": PROJECT_ID, "name_prefix": "r-", "keep_newest": 1}
    handle(aws, context, action | {"keep_newest_per_name": 1})

    # THEN a-old goes: it is neither the newest run (a-new is) nor the newest run named r-a (a-new again)
    assert [i for i in (a_new, a_old, b) if emulator.experiments[i].deleted_at] == [a_old]
    assert outcome(aws)["result"]["spared"] == {"newest": 1, "protected": 0, "unknown_age": 0, "newest_per_name": 1}


def test_a_protected_experiment_is_spared_by_an_age_prune(
    aws: Aws,
    emulator: DatadogEmulator,
    function_env: None,
    context: FakeLambdaContext,
    runs: dict[str, tuple[str, int]],
) -> None:
    handle(aws, context, {"action": "prune_experiments", "project_id": PROJECT_ID, "older_than_days": 1})

    assert deleted_runs(emulator, runs) == set(runs.values()) - {("eval-a", 4)}
    assert outcome(aws)["result"]["spared"] == {"newest": 0, "protected": 1, "unknown_age": 0}


# --- names instead of ids ----------------------------------------------------------------------------


def test_a_clone_by_names_resolves_them_and_says_what_they_named(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext, log_output: LogOutput
) -> None:
    action = {"action": "clone_dataset", "project_name": "evals", "dataset_name": "golden", "name": "by-name"}

    assert handle(aws, context, action) == {"batchItemFailures": []}

    [clone] = emulator.datasets_named("by-name")
    assert clone.project_id == PROJECT_ID
    [request] = emulator.calls("POST", "/clone")
    assert request.path.endswith(f"/{PROJECT_ID}/datasets/{DATASET_ID}/clone")
    assert outcome(aws)["result"]["resolved"] == {"project_id": PROJECT_ID, "dataset_id": DATASET_ID}
    [resolved] = [line for line in log_output.lines() if line["message"] == "names resolved"]
    assert resolved["resolved"] == {"project_id": PROJECT_ID, "dataset_id": DATASET_ID}
    [done] = [line for line in log_output.lines() if line["message"] == "dataset cloned"]
    assert (done["project_id"], done["dataset_id"]) == (PROJECT_ID, DATASET_ID), "every later line names the ids"


@pytest.mark.parametrize(
    ("names", "reason"),
    [
        ({"project_name": "nope", "dataset_id": DATASET_ID}, "no project named 'nope'"),
        ({"project_id": PROJECT_ID, "dataset_name": "nope"}, f"no dataset named 'nope' in project {PROJECT_ID}"),
    ],
)
def test_a_name_that_matches_nothing_is_rejected_with_the_name(
    aws: Aws,
    emulator: DatadogEmulator,
    function_env: None,
    context: FakeLambdaContext,
    names: dict[str, str],
    reason: str,
) -> None:
    handle(aws, context, {"action": "clone_dataset", "name": "n"} | names)

    [dead] = aws.dead_letters()
    assert dead["attributes"]["error_class"] == "rejected"
    assert reason in dead["attributes"]["error_message"]
    assert emulator.calls("POST", "/clone") == []


def test_a_name_that_matches_several_is_rejected_with_the_count(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    emulator.add_dataset(PROJECT_ID, "golden")  # a second one of that name

    handle(aws, context, {"action": "clone_dataset", "project_id": PROJECT_ID, "dataset_name": "golden", "name": "n"})

    [dead] = aws.dead_letters()
    assert "2 datasets are named 'golden'" in dead["attributes"]["error_message"]
    assert "give dataset_id" in dead["attributes"]["error_message"]


def test_only_the_exact_name_counts_whatever_the_filter_matches(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    emulator.name_filter_contains = True
    emulator.add_project("evals-staging")
    emulator.add_dataset(PROJECT_ID, "golden-v2")

    handle(aws, context, {"action": "clone_dataset", "project_name": "evals", "dataset_name": "golden", "name": "n"})

    assert outcome(aws)["result"]["resolved"] == {"project_id": PROJECT_ID, "dataset_id": DATASET_ID}


def test_a_renamed_dataset_never_replays_the_result_stored_for_the_one_that_had_its_name(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    action = clone_action(dataset_id=None, dataset_name="golden", name="weekly", idempotency_key="weekly-49")
    action.pop("dataset_id")
    handle(aws, context, action)
    handle(aws, context, action)  # a redelivery: the name still names the same dataset
    first, again = published(aws)
    assert first["detail"]["duplicate"] is False
    assert again["detail"]["duplicate"] is True
    assert len(emulator.datasets_named("weekly")) == 1

    emulator.datasets[DATASET_ID].name = "golden-2025"
    emulator.add_dataset(PROJECT_ID, "golden")  # another dataset takes the name
    handle(aws, context, action)

    [dead] = aws.dead_letters()
    assert "idempotency key already used for a different request" in dead["attributes"]["error_message"]
    assert len(emulator.datasets_named("weekly")) == 1


def test_a_prune_of_datasets_by_project_name(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext, snapshots: dict[int, str]
) -> None:
    handle(
        aws,
        context,
        {"action": "prune_datasets", "project_name": "evals", "name_prefix": PREFIX, "older_than_days": 38},
    )

    assert gone(emulator, snapshots) == {38, 39}
    assert outcome(aws)["result"]["resolved"] == {"project_id": PROJECT_ID}


# --- both ends, as samconfig.toml's example schedules them ---------------------------------------------


def test_samconfigs_backup_schedule_exports_the_project_as_scheduler_delivers_it(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    documented = dict(re.findall(r"^#   (\w+)\s+(\{.*\})$", (ROOT / "samconfig.toml").read_text(), re.MULTILINE))
    nightly = documented["BackupScheduledAction"].replace("<project id>", PROJECT_ID)
    body = scheduled_input(nightly, datetime(2026, 10, 1, 4, 0, tzinfo=UTC), attempt=1)

    assert handle(aws, context, body) == {"batchItemFailures": []}

    result = outcome(aws)["result"]
    assert result["exported"] >= 1, "the seeded dataset's current version, at least"
    assert result["failed"] == 0


def test_samconfigs_two_schedules_keep_thirty_days_of_snapshots_and_what_must_stay(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    # GIVEN the two inputs samconfig.toml documents, for this project and dataset
    documented = dict(re.findall(r"^#   (\w+)\s+(\{.*\})$", (ROOT / "samconfig.toml").read_text(), re.MULTILINE))
    inputs = {
        name: text.replace("<project id>", PROJECT_ID).replace("<dataset id>", DATASET_ID)
        for name, text in documented.items()
    }
    assert {"ScheduledAction", "RetentionScheduledAction"} <= set(inputs)

    # WHEN Scheduler runs both every night for 40 nights (the retention half an hour after the snapshot)
    first = datetime(2026, 10, 1, 3, 0, tzinfo=UTC)
    kept = used = ""
    for night in range(40):
        run = first + timedelta(days=night)
        handle(aws, context, scheduled_input(inputs["ScheduledAction"], run, attempt=1))
        [snapshot] = emulator.datasets_named(f"golden-{run:%Y-%m-%d}")
        snapshot.created_at = stamp_at(run)  # Datadog stamps it when it is made: then
        if night == 2:
            snapshot.metadata, kept = {"keep": True}, snapshot.id
        if night == 3:
            emulator.add_experiment(PROJECT_ID, snapshot.id, "quarterly-eval")
            used = snapshot.id
        retention = run + timedelta(minutes=30)
        handle(aws, context, scheduled_input(inputs["RetentionScheduledAction"], retention, attempt=1))

    # THEN the last 30 nights' snapshots are there (the 31st is older than 30 days by half an hour), and the two
    # that had to stay, and the source
    live = sorted(d.name for d in emulator.datasets.values() if d.deleted_at is None and d.name.startswith("golden-"))
    expected = [f"golden-{first + timedelta(days=n):%Y-%m-%d}" for n in range(10, 40)]
    assert live == sorted([*expected, emulator.datasets[kept].name, emulator.datasets[used].name])
    assert emulator.live_dataset(DATASET_ID) is not None
    assert aws.dead_letters() == []


def stamp_at(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- restore_dataset_version ------------------------------------------------------------------------------


def test_a_dataset_is_rolled_back_to_an_earlier_version_in_place(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    # GIVEN a dataset at version 1, then a mistaken change made version 2
    dataset = emulator.add_dataset(PROJECT_ID, "golden-v", records=3)
    before = [dict(record) for record in dataset.records]
    dataset.new_version(dataset.records[:1], stamp(0))

    # WHEN version 1 is restored
    action = {"action": "restore_dataset_version", "project_id": PROJECT_ID, "dataset_id": dataset.id, "version": 1}
    assert handle(aws, context, action) == {"batchItemFailures": []}

    # THEN its records are version 1's again, as a new version: nothing of its history is lost
    assert (dataset.current_version, dataset.records) == (3, before)
    assert dataset.versions[2] != before
    result = outcome(aws)["result"]
    assert (result["restored_version"], result["exported_version"]) == (1, 2), "what it replaced, kept first"


def test_a_restore_by_names_and_a_version_datadog_refuses(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    dataset = emulator.add_dataset(PROJECT_ID, "golden-named", records=2)
    by_names = {"action": "restore_dataset_version", "project_name": "evals", "dataset_name": "golden-named"}
    assert handle(aws, context, by_names | {"version": 1}) == {"batchItemFailures": []}
    assert dataset.current_version == 2

    handle(aws, context, by_names | {"version": 9})  # beyond the current version: Datadog says 400

    [dead] = aws.dead_letters()
    assert (dead["attributes"]["error_class"], dead["attributes"]["http_status"]) == ("rejected", "400")
    assert dataset.current_version == 2
