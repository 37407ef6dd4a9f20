"""End to end on the local stack: producers -> SQS (or EventBridge -> SQS) -> poller -> function -> emulator."""

from __future__ import annotations

import json
import random
import sys
import time

import boto3
import pytest

from llmobs_actions import datadog, handler
from local.clock import ShiftedClock
from local.datadog_emulator import DatadogEmulator, Fault
from local.poller import Poller
from local.runtime_api import LambdaRuntime
from tests.conftest import DATASET_ID, EXPERIMENT_IDS, PROJECT_ID, SECRET_ID, Aws, clone_action, delete_action
from tests.integration.conservation import account


def send(aws: Aws, body: object) -> str:
    text = body if isinstance(body, str) else json.dumps(body)
    return str(aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=text)["MessageId"])


def test_a_clone_sent_to_the_queue_is_done_once(aws: Aws, emulator: DatadogEmulator, poller: Poller) -> None:
    message_id = send(aws, clone_action(name="via sqs"))
    assert poller.run_until_empty(timeout_seconds=20)
    [dataset] = emulator.datasets_named("via sqs")
    assert len(dataset.records) == 5
    assert poller.deliveries[message_id].responses == ["done"]
    assert poller.deliveries[message_id].deleted
    assert aws.dead_letters() == []


def test_a_clone_published_on_eventbridge_reaches_the_function_through_the_rule(
    aws: Aws, emulator: DatadogEmulator, poller: Poller
) -> None:
    pattern = aws.values.event_pattern
    boto3.client("events").put_events(
        Entries=[
            {
                "Source": pattern["source"][0],
                "DetailType": pattern["detail-type"][0],
                "Detail": json.dumps(clone_action(name="via eventbridge")),
                "EventBusName": aws.values.event_bus_name,
            }
        ]
    )
    unrelated = {"Source": "someone.else", "DetailType": "Other", "Detail": json.dumps(clone_action(name="not ours"))}
    boto3.client("events").put_events(Entries=[unrelated])
    assert poller.run_until_empty(timeout_seconds=20)
    assert len(emulator.datasets_named("via eventbridge")) == 1
    assert emulator.datasets_named("not ours") == []
    [delivery] = poller.deliveries.values()
    assert json.loads(delivery.body)["detail"]["name"] == "via eventbridge"


def test_a_delete_soft_deletes_the_experiments(aws: Aws, emulator: DatadogEmulator, poller: Poller) -> None:
    send(aws, delete_action())
    assert poller.run_until_empty(timeout_seconds=20)
    assert all(emulator.experiments[i].deleted_at for i in EXPERIMENT_IDS)


@pytest.mark.parametrize(
    ("body", "error_class"),
    [("{not json", "invalid"), (json.dumps(clone_action(dataset_id="no-such-dataset")), "rejected")],
)
def test_permanent_failures_reach_the_dlq_at_once_unchanged(
    aws: Aws, poller: Poller, body: str, error_class: str
) -> None:
    message_id = send(aws, body)
    assert poller.run_until_empty(timeout_seconds=20)
    assert poller.deliveries[message_id].receives == 1
    [dead] = aws.dead_letters()
    assert dead["body"] == body
    assert dead["attributes"]["error_class"] == error_class
    assert dead["attributes"]["source_message_id"] == message_id


def test_a_passing_outage_is_retried_and_the_clone_done_once(
    aws: Aws, emulator: DatadogEmulator, poller: Poller
) -> None:
    emulator.inject(Fault(status=500, times=1, path_contains="/clone"))
    message_id = send(aws, clone_action(name="after outage"))
    assert poller.run_until_empty(timeout_seconds=20)
    assert poller.deliveries[message_id].responses == ["retry", "done"]
    assert len(emulator.datasets_named("after outage")) == 1
    assert aws.dead_letters() == []


def test_an_outage_that_never_ends_dead_letters_on_the_last_receive_with_its_reason(
    aws: Aws, emulator: DatadogEmulator, poller: Poller
) -> None:
    emulator.inject(Fault(status=500, times=1000, path_contains="/clone"))
    message_id = send(aws, clone_action(name="never"))
    assert poller.run_until_empty(timeout_seconds=40)
    assert poller.deliveries[message_id].receives == aws.values.max_receive_count
    # dead-lettered by the function on its last receive, not moved by SQS without a word
    [dead] = aws.dead_letters()
    assert json.loads(dead["body"])["name"] == "never"
    reason = dead["attributes"]
    assert (reason["source_message_id"], reason["error_class"], reason["http_status"]) == (
        message_id,
        "transient",
        "500",
    )
    assert reason["retries_exhausted"] == f"receive 5 of maxReceiveCount {aws.values.max_receive_count} failed"
    assert reason["receive_count"] == str(aws.values.max_receive_count)


def test_a_throttled_message_waits_in_its_queue_for_a_distant_reset_then_succeeds(
    aws: Aws, emulator: DatadogEmulator, poller: Poller, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_THROTTLE_WAIT_SECONDS", "1")  # a reset 3 s away is not waited for in the invocation
    emulator.inject(Fault(status=429, times=1, headers={"X-RateLimit-Reset": "3"}))
    message_id = send(aws, delete_action())
    assert poller.run_until_empty(timeout_seconds=30)
    delivery = poller.deliveries[message_id]
    assert delivery.responses == ["retry", "done"]
    assert delivery.received_at[1] - delivery.received_at[0] >= 3  # not the queue's own 1 s
    assert all(emulator.experiments[i].deleted_at for i in EXPERIMENT_IDS)


def test_a_near_reset_is_waited_for_in_the_invocation_without_spending_a_receive(
    aws: Aws, emulator: DatadogEmulator, poller: Poller
) -> None:
    emulator.inject(Fault(status=429, times=1, headers={"X-RateLimit-Reset": "1"}))
    message_id = send(aws, clone_action(name="waited"))
    assert poller.run_until_empty(timeout_seconds=20)
    assert poller.deliveries[message_id].responses == ["done"]
    assert [r.status for r in emulator.calls("POST", "/clone")] == [429, 200]
    assert len(emulator.datasets_named("waited")) == 1


def test_a_known_rate_limit_is_never_exceeded(aws: Aws, emulator: DatadogEmulator, poller: Poller) -> None:
    """Fails with the client's rate budget switched off: the waiting clones then go out as bursts, and
    Datadog refuses each burst's excess (checked by disabling RateBudget.wait_seconds)."""
    # GIVEN Datadog allows 3 clones a 2-second window, and one answer has told the function so
    emulator.limit_rate(3, 2, family="datasets")
    send(aws, clone_action(name="budget 0"))
    assert poller.run_until_empty(timeout_seconds=20)

    # WHEN 8 more clones arrive in one batch
    sent = [send(aws, clone_action(name=f"budget {n}")) for n in range(1, 9)]
    assert poller.run_until_empty(timeout_seconds=40)

    # THEN all are done in their first receive, and Datadog never had to refuse one
    assert all(poller.deliveries[m].responses == ["done"] for m in sent)
    statuses = [r.status for r in emulator.calls("POST", "/clone")]
    assert statuses == [200] * 9


@pytest.mark.parametrize("shared", [False, True], ids=["per-endpoint-limits", "one-shared-limit"])
def test_an_exhausted_clone_limit_holds_back_deletes_only_when_they_share_it(
    shared: bool, aws: Aws, emulator: DatadogEmulator, poller: Poller, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the function has seen a delete answered, then a clone refused for the next 30 s
    emulator.shared_rate_limit = shared
    # Datadog's windows are calendar-aligned (the emulator's: a minute): one used up seconds before its end
    # would reset in the middle of the test. So the minute starts now, for Datadog and the function alike.
    clock = ShiftedClock.at_second(1)
    emulator.clock = clock.time
    monkeypatch.setattr(datadog.transport, "time", clock)
    monkeypatch.setattr(datadog.rate_budget, "time", clock)
    send(aws, delete_action(experiment_ids=EXPERIMENT_IDS[:1]))
    assert poller.run_until_empty(timeout_seconds=20)
    # what Datadog says when this minute's window is used up: no request left until it ends
    used_up = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(60 - clock.time() % 60) + 1)}
    emulator.inject(Fault(status=429, times=1, path_contains="/clone", headers=used_up))
    send(aws, clone_action(name="refused"))
    poller.poll_once()

    # WHEN a batch mixing clones and deletes arrives
    clones = [send(aws, clone_action(name=f"held {n}")) for n in range(2)]
    delete = send(aws, delete_action(experiment_ids=EXPERIMENT_IDS[1:]))
    poller.poll_once()

    # THEN the clones wait without being sent; the delete goes through unless its limit is the same one
    assert [poller.deliveries[m].responses for m in clones] == [["retry"], ["retry"]]
    assert len(emulator.calls("POST", "/clone")) == 1
    assert poller.deliveries[delete].responses == (["retry"] if shared else ["done"])
    assert len(emulator.calls("POST", "/experiments/delete")) == 1 + (0 if shared else 1)


def test_rotated_keys_are_picked_up_without_a_redeploy(aws: Aws, emulator: DatadogEmulator, poller: Poller) -> None:
    send(aws, delete_action(experiment_ids=EXPERIMENT_IDS[:1]))
    assert poller.run_until_empty(timeout_seconds=20)
    emulator.rotate_keys("rotated-api-key", "rotated-app-key")
    aws.secrets.put_secret_value(
        SecretId=SECRET_ID, SecretString=json.dumps({"api_key": "rotated-api-key", "app_key": "rotated-app-key"})
    )
    message_id = send(aws, delete_action(experiment_ids=EXPERIMENT_IDS[1:]))
    assert poller.run_until_empty(timeout_seconds=20)
    assert poller.deliveries[message_id].responses == ["done"]
    assert emulator.requests[-1].headers["DD-API-KEY"] == "rotated-api-key"


def test_a_message_stays_in_its_queue_when_the_dlq_is_unreachable(
    aws: Aws, poller: Poller, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", aws.dlq_url + "-missing")
    handler.processor.cache_clear()
    message_id = send(aws, "{broken")
    poller.poll_once()
    assert poller.deliveries[message_id].responses == ["retry"]
    assert not poller.deliveries[message_id].deleted
    assert not poller.queue_is_empty()  # still there, in flight until its visibility runs out
    assert aws.dead_letters() == []


def test_conservation_every_message_is_done_once_or_dead_lettered(
    aws: Aws, emulator: DatadogEmulator, poller: Poller
) -> None:
    """Mixed messages, random Datadog faults (fixed seed): none lost, none done twice."""
    chance = random.Random(20261122)
    emulator.add_dataset(PROJECT_ID, "second", dataset_id="second-dataset")
    expected: dict[str, str] = {}
    for number in range(40):
        kind = chance.choice(["clone", "clone", "clone", "delete", "invalid", "missing"])
        if kind == "clone":
            body = clone_action(dataset_id=chance.choice([DATASET_ID, "second-dataset"]), name=f"snapshot {number}")
        elif kind == "delete":
            experiment = emulator.add_experiment(PROJECT_ID, DATASET_ID, f"run {number}")
            body = delete_action(experiment_ids=[experiment])
        elif kind == "invalid":
            body = clone_action(project_id="../etc")
        else:
            body = clone_action(dataset_id="missing", name=f"orphan {number}")
        expected[send(aws, body)] = kind
    for _ in range(12):
        status = chance.choice([500, 502, 503, 429, None])
        emulator.inject(
            Fault(
                status=status,
                drop=status is None,
                times=chance.randint(1, 3),
                headers={"X-RateLimit-Reset": "1"} if status == 429 else {},
            )
        )
    emulator.inject(Fault(delay_seconds=2.5, times=2, path_contains="/clone"))  # clones whose answer is lost

    assert poller.run_until_empty(timeout_seconds=90)

    where = account(aws, poller, set(expected))
    permanent = {m for m, kind in expected.items() if kind in ("invalid", "missing")}
    assert where.by_function == permanent, "only messages that can never succeed are dead-lettered by the function"
    for message_id in where.done:
        assert expected[message_id] in ("clone", "delete")
        if expected[message_id] == "clone":
            name = json.loads(poller.deliveries[message_id].body)["name"]
            assert len(emulator.datasets_named(name)) == 1, f"{name} cloned more than once"
    assert where.by_redrive == set(), "with up to 3 faults in a row, every retryable message succeeds within 5 receives"


def test_the_function_in_its_own_process_through_the_lambda_runtime_api(
    aws: Aws, emulator: DatadogEmulator, function_env: None, tmp_path: object
) -> None:
    """awslambdaric imports the handler string, builds the real context and calls it, as Lambda does."""
    environment: dict[str, str] = {}  # LambdaRuntime passes this process's environment, the function's included
    log_path = tmp_path / "function.log"  # type: ignore[operator]
    with log_path.open("w") as log, LambdaRuntime(environment, aws.values.function_timeout_seconds, log=log) as runtime:
        poller = Poller(aws.sqs, aws.queue_url, aws.queue_arn, runtime.invoke, aws.values.batch_size)
        good, bad = send(aws, clone_action(name="own process")), send(aws, "nope")
        started = time.monotonic()
        assert poller.run_until_empty(timeout_seconds=30)
    assert time.monotonic() - started < 30
    assert poller.deliveries[good].responses == ["done"]
    assert poller.deliveries[bad].responses == ["done"]  # dead-lettered by the function: handled
    assert len(emulator.datasets_named("own process")) == 1
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith('{"level"')]
    assert any(line.get("cold_start") is True and line.get("function_request_id") for line in lines), sys.stderr
