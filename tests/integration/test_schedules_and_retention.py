"""Scheduled snapshots with name templates, and retention with prune_experiments, on the local stack."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from llmobs_actions import handler
from llmobs_actions.actions import calls
from local.datadog_emulator import DatadogEmulator
from local.poller import Poller
from local.scheduler import scheduled_input
from tests.conftest import DATASET_ID, EXPERIMENT_IDS, PROJECT_ID, Aws, FakeLambdaContext, clone_action
from tests.integration.delivery import handle

NOW = datetime.now(UTC)


def send(aws: Aws, body: object) -> str:
    return str(aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=json.dumps(body))["MessageId"])


def test_a_nightly_snapshot_is_named_after_the_day_it_was_sent(
    aws: Aws, emulator: DatadogEmulator, poller: Poller
) -> None:
    # what an EventBridge Scheduler target sends every night: a constant input
    send(aws, clone_action(name="golden-{event_time:%Y-%m-%d}", description="{source_name}, nightly"))
    assert poller.run_until_empty(timeout_seconds=20)
    [snapshot] = emulator.datasets_named(f"golden-{NOW:%Y-%m-%d}")
    assert snapshot.description == "golden, nightly"


def test_an_eventbridge_event_names_the_snapshot_after_its_time(
    aws: Aws, emulator: DatadogEmulator, poller: Poller
) -> None:
    send(
        aws,
        {
            "version": "0",
            "id": "evt-night",
            "detail-type": "LLMObs Action",
            "source": "llmobs.actions",
            "time": "2026-11-21T23:30:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": clone_action(name="{source_name}-{date}"),
        },
    )
    assert poller.run_until_empty(timeout_seconds=20)
    assert len(emulator.datasets_named("golden-2026-11-21")) == 1


def test_an_unknown_placeholder_is_invalid_input(aws: Aws, poller: Poller) -> None:
    send(aws, clone_action(name="golden-{tonight}"))
    assert poller.run_until_empty(timeout_seconds=20)
    [dead] = aws.dead_letters()
    assert dead["attributes"]["error_class"] == "invalid"
    assert "unknown placeholder {tonight}" in dead["attributes"]["error_message"]


@pytest.fixture
def history(emulator: DatadogEmulator) -> dict[str, int]:
    """250 experiments across three pages: ages 0 to 249 days (and 12 hours), every other one 'nightly-'."""
    ages = {}
    for age in range(250):
        created = (NOW - timedelta(days=age, hours=12)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        name = f"{'nightly' if age % 2 == 0 else 'adhoc'}-{age}"
        ages[emulator.add_experiment(PROJECT_ID, DATASET_ID, name, created_at=created)] = age
    return ages


def prune(aws: Aws, poller: Poller, **selector: object) -> None:
    send(aws, {"action": "prune_experiments", "project_id": PROJECT_ID, "max_deletions": 1000} | selector)
    assert poller.run_until_empty(timeout_seconds=30)


def deleted(emulator: DatadogEmulator, history: dict[str, int]) -> set[int]:
    return {age for experiment_id, age in history.items() if emulator.experiments[experiment_id].deleted_at}


def test_prune_by_age_reads_every_page(
    aws: Aws, emulator: DatadogEmulator, poller: Poller, history: dict[str, int]
) -> None:
    prune(aws, poller, older_than_days=30)
    assert deleted(emulator, history) == set(range(30, 250))
    pages = emulator.calls("GET", "/experiments")
    assert len(pages) == 3
    assert all(not emulator.experiments[i].deleted_at for i in EXPERIMENT_IDS)  # made just now


def test_prune_by_prefix_keeping_the_newest(
    aws: Aws, emulator: DatadogEmulator, poller: Poller, history: dict[str, int]
) -> None:
    prune(aws, poller, name_prefix="nightly-", keep_newest=7)
    assert deleted(emulator, history) == {age for age in range(250) if age % 2 == 0} - {0, 2, 4, 6, 8, 10, 12}


def test_prune_selectors_combine(aws: Aws, emulator: DatadogEmulator, poller: Poller, history: dict[str, int]) -> None:
    prune(aws, poller, name_prefix="adhoc-", older_than_days=200, keep_newest=10)
    old_adhoc = sorted(age for age in range(201, 250) if age % 2 == 1)
    assert deleted(emulator, history) == set(old_adhoc[10:])


def test_prune_refuses_past_its_cap_and_deletes_nothing(
    aws: Aws, emulator: DatadogEmulator, poller: Poller, history: dict[str, int]
) -> None:
    send(aws, {"action": "prune_experiments", "project_id": PROJECT_ID, "older_than_days": 1, "max_deletions": 50})
    assert poller.run_until_empty(timeout_seconds=30)
    [dead] = aws.dead_letters()
    assert dead["attributes"]["error_class"] == "rejected"
    assert "more than max_deletions (50)" in dead["attributes"]["error_message"]
    assert deleted(emulator, history) == set()
    assert emulator.calls("POST", "/experiments/delete") == []


def test_a_dry_run_prune_lists_but_never_deletes(
    aws: Aws, emulator: DatadogEmulator, poller: Poller, history: dict[str, int]
) -> None:
    prune(aws, poller, older_than_days=100, dry_run=True)
    assert emulator.calls("POST", "/experiments/delete") == []
    assert len(emulator.calls("GET", "/experiments")) == 3
    assert deleted(emulator, history) == set()


def test_prune_ignores_experiments_already_deleted(
    aws: Aws, emulator: DatadogEmulator, poller: Poller, history: dict[str, int]
) -> None:
    emulator.refuse_deleting_gone_experiments = True  # a stricter Datadog would refuse naming them again
    already = [i for i, age in history.items() if age >= 240]
    for experiment_id in already:
        emulator.experiments[experiment_id].deleted_at = "2026-01-01T00:00:00Z"
    prune(aws, poller, older_than_days=230)
    sent = {
        i
        for call in emulator.calls("POST", "/experiments/delete")
        for i in call.body["data"]["attributes"]["experiment_ids"]
    }
    assert sent == {i for i, age in history.items() if 230 <= age < 240}
    assert aws.dead_letters() == []


def test_a_prune_without_a_selector_is_invalid(aws: Aws, poller: Poller) -> None:
    send(aws, {"action": "prune_experiments", "project_id": PROJECT_ID})
    assert poller.run_until_empty(timeout_seconds=20)
    [dead] = aws.dead_letters()
    assert "give at least one of older_than_days, name_prefix, keep_newest" in dead["attributes"]["error_message"]


def test_prune_deletes_no_more_than_the_deployment_allows_per_message(
    aws: Aws, emulator: DatadogEmulator, poller: Poller, history: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_EXPERIMENT_IDS", "50")  # a deployment capped below the message's max_deletions
    handler.processor.cache_clear()
    prune(aws, poller, older_than_days=1)  # max_deletions 1000: 249 would match
    [dead] = aws.dead_letters()
    assert dead["attributes"]["error_class"] == "rejected"
    assert "MAX_EXPERIMENT_IDS 50" in dead["attributes"]["error_message"]
    assert deleted(emulator, history) == set()


def test_keep_newest_ranks_by_the_real_time_and_never_deletes_what_it_cannot_rank(
    aws: Aws, emulator: DatadogEmulator, poller: Poller
) -> None:
    # GIVEN three runs: the newest written with an offset (04:00Z), one at 01:00Z, one of unknown age
    newest = emulator.add_experiment(PROJECT_ID, DATASET_ID, "eval-a", created_at="2026-11-01T23:00:00-05:00")
    older = emulator.add_experiment(PROJECT_ID, DATASET_ID, "eval-b", created_at="2026-11-02T01:00:00Z")
    unknown = emulator.add_experiment(PROJECT_ID, DATASET_ID, "eval-c", created_at="unknown")

    # WHEN the newest one is kept
    prune(aws, poller, name_prefix="eval-", keep_newest=1)

    # THEN the one that is really older goes, the newest and the one of unknown age stay
    assert emulator.experiments[older].deleted_at
    assert not emulator.experiments[newest].deleted_at
    assert not emulator.experiments[unknown].deleted_at
    assert aws.dead_letters() == []


def test_a_list_that_changes_while_paged_and_ids_the_contract_refuses_do_not_stop_a_prune(
    aws: Aws, emulator: DatadogEmulator, poller: Poller, history: dict[str, int]
) -> None:
    # GIVEN Datadog lists an id that could not go into a URL, and a run is started while the prune pages
    odd = emulator.add_experiment(
        PROJECT_ID, DATASET_ID, "odd", experiment_id="../odd", created_at="2020-01-01T00:00:00Z"
    )
    emulator.after_listing_experiments.append(lambda: emulator.add_experiment(PROJECT_ID, DATASET_ID, "started now"))

    # WHEN the prune pages through (the new run shifts the second page: one experiment is listed twice)
    prune(aws, poller, older_than_days=30)

    # THEN it is done: the odd id skipped, the repeated one deleted once
    assert aws.dead_letters() == []
    assert deleted(emulator, history) == set(range(30, 250))
    assert not emulator.experiments[odd].deleted_at
    sent = [
        i
        for call in emulator.calls("POST", "/experiments/delete")
        for i in call.body["data"]["attributes"]["experiment_ids"]
    ]
    assert len(sent) == len(set(sent))


def test_a_scheduled_run_delivered_twice_clones_once_named_after_its_scheduled_time(
    aws: Aws, emulator: DatadogEmulator, poller: Poller
) -> None:
    # GIVEN the nightly input of the README and samconfig, as Scheduler fills it for one run
    template = json.dumps(
        clone_action(
            name="golden-{event_time:%Y-%m-%d}",
            idempotency_key="nightly-golden-<aws.scheduler.scheduled-time>",
            event_time="<aws.scheduler.scheduled-time>",
        )
    )
    run = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)

    # WHEN Scheduler delivers that run twice (at least once: the second try of one attempt went through too)
    bodies = [scheduled_input(template, run, attempt=attempt) for attempt in (1, 2)]
    sent = [aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=body)["MessageId"] for body in bodies]
    assert poller.run_until_empty(timeout_seconds=20)

    # THEN both messages are done and there is one snapshot, named after the run, not the delivery
    assert all(poller.deliveries[m].deleted for m in sent)
    assert len(emulator.calls("POST", "/clone")) == 1
    assert len(emulator.datasets_named("golden-2026-11-22")) == 1


def test_a_listing_that_never_ends_is_refused_not_paged_for_ever(
    aws: Aws, emulator: DatadogEmulator, poller: Poller, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a Datadog whose experiment list hands out a next cursor on every page (a paging bug)
    monkeypatch.setattr(calls, "MAX_PAGES", 5)  # the cap, made small so the test pages 5 times, not 1,000
    emulator.listing_never_ends = True
    aws.sqs.send_message(
        QueueUrl=aws.queue_url,
        MessageBody=json.dumps({"action": "prune_experiments", "project_id": PROJECT_ID, "older_than_days": 1}),
    )

    # WHEN the prune runs
    assert poller.run_until_empty(timeout_seconds=20)

    # THEN it stops at the cap, deletes nothing, and says why
    [dead] = aws.dead_letters()
    assert "more than 5 pages" in dead["attributes"]["error_message"]
    assert len(emulator.calls("GET", "/experiments")) == 5
    assert emulator.calls("POST", "/experiments/delete") == []


def test_a_duplicate_prune_counts_no_experiments_pruned(
    aws: Aws,
    emulator: DatadogEmulator,
    function_env: None,
    context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old = [
        emulator.add_experiment(PROJECT_ID, DATASET_ID, f"gone {n}", created_at="2026-01-01T00:00:00Z")
        for n in range(3)
    ]
    action = {"action": "prune_experiments", "project_id": PROJECT_ID, "name_prefix": "gone ", "idempotency_key": "p-1"}
    handle(aws, context, action)
    assert '"ExperimentsPruned":[3.0]' in capsys.readouterr().out
    assert all(emulator.experiments[i].deleted_at for i in old)

    handle(aws, context, action)  # the same request again: its stored result, nothing deleted

    metrics = capsys.readouterr().out
    assert '"DuplicateSuppressed":[1.0]' in metrics
    assert "ExperimentsPruned" not in metrics
