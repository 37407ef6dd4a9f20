"""Exactly-once effects under at-least-once delivery: duplicates, resends, conflicts, timeouts, DynamoDB down."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import boto3
import pytest

from llmobs_actions import handler
from local.datadog_emulator import DatadogEmulator, Fault
from local.poller import Poller, sqs_record
from local.runtime_api import LambdaRuntime
from local.servers import thread
from local.strict_aws import AwsFault
from tests.conftest import (
    DATASET_ID,
    EXPERIMENT_IDS,
    PROJECT_ID,
    Aws,
    FakeLambdaContext,
    LogOutput,
    clone_action,
    delete_action,
)


def send(aws: Aws, body: object) -> str:
    text = body if isinstance(body, str) else json.dumps(body)
    return str(aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=text)["MessageId"])


def eventbridge_event(detail: dict[str, object], event_id: str) -> dict[str, object]:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "LLMObs Action",
        "source": "llmobs.actions",
        "time": "2026-11-22T03:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def test_a_message_redelivered_before_its_delete_clones_once(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext, log_output: LogOutput
) -> None:
    # GIVEN a message handled successfully whose delete never happened (the Lambda died right after)
    send(aws, clone_action(name="redelivered"))
    first = aws.sqs.receive_message(QueueUrl=aws.queue_url, AttributeNames=["All"])["Messages"][0]
    assert handler.lambda_handler({"Records": [sqs_record(first, aws.queue_arn)]}, context) == {"batchItemFailures": []}

    # WHEN its visibility expires and it is delivered again
    again = aws.sqs.receive_message(QueueUrl=aws.queue_url, AttributeNames=["All"], WaitTimeSeconds=3)["Messages"][0]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    response = handler.lambda_handler({"Records": [sqs_record(again, aws.queue_arn)]}, context)

    # THEN it is done without a second clone, and the duplicate is said so
    assert response == {"batchItemFailures": []}
    assert len(emulator.calls("POST", "/clone")) == 1
    assert len(emulator.datasets_named("redelivered")) == 1
    assert any(line["message"].startswith("duplicate suppressed") for line in log_output.lines())


def test_an_eventbridge_event_delivered_twice_clones_once(aws: Aws, emulator: DatadogEmulator, poller: Poller) -> None:
    # GIVEN EventBridge delivered one event twice: two SQS messages with the same event id
    event = eventbridge_event(clone_action(name="delivered twice"), "7c1e2d3f-0000-4000-8000-000000000001")
    first, second = send(aws, event), send(aws, event)

    # WHEN both are processed
    assert poller.run_until_empty(timeout_seconds=20)

    # THEN both are done and Datadog saw one clone
    assert poller.deliveries[first].deleted
    assert poller.deliveries[second].deleted
    assert len(emulator.calls("POST", "/clone")) == 1
    assert aws.dead_letters() == []


def test_a_producer_resending_with_the_same_key_clones_once(
    aws: Aws, emulator: DatadogEmulator, poller: Poller, capsys: pytest.CaptureFixture[str]
) -> None:
    send(aws, clone_action(name="resent", idempotency_key="nightly-2026-11-22"))
    assert poller.run_until_empty(timeout_seconds=20)
    resent = send(aws, clone_action(name="resent", idempotency_key="nightly-2026-11-22"))
    assert poller.run_until_empty(timeout_seconds=20)

    assert poller.deliveries[resent].responses == ["done"]
    assert len(emulator.datasets_named("resent")) == 1
    assert aws.dead_letters() == []
    assert '"DuplicateSuppressed":[1.0]' in capsys.readouterr().out


def test_the_same_key_for_a_different_target_is_a_conflict_in_the_dlq(
    aws: Aws, emulator: DatadogEmulator, poller: Poller
) -> None:
    emulator.add_dataset(PROJECT_ID, "other", dataset_id="other-dataset")
    send(aws, clone_action(name="first", idempotency_key="shared-key"))
    assert poller.run_until_empty(timeout_seconds=20)
    conflicting = send(aws, clone_action(dataset_id="other-dataset", name="first", idempotency_key="shared-key"))
    assert poller.run_until_empty(timeout_seconds=20)

    [dead] = aws.dead_letters()
    assert dead["attributes"]["source_message_id"] == conflicting
    assert dead["attributes"]["error_class"] == "rejected"
    assert "idempotency key already used for a different request" in dead["attributes"]["error_message"]
    assert len(emulator.calls("POST", "/clone")) == 1


def test_the_same_key_for_another_action_is_independent(aws: Aws, emulator: DatadogEmulator, poller: Poller) -> None:
    send(aws, clone_action(name="keyed clone", idempotency_key="k"))
    send(aws, delete_action(idempotency_key="k"))
    assert poller.run_until_empty(timeout_seconds=20)
    assert len(emulator.datasets_named("keyed clone")) == 1
    assert all(emulator.experiments[i].deleted_at for i in EXPERIMENT_IDS)
    assert aws.dead_letters() == []


def test_dynamodb_down_means_retry_and_no_datadog_call(
    aws: Aws, emulator: DatadogEmulator, poller: Poller, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9")  # nothing listens there
    handler.processor.cache_clear()
    message_id = send(aws, clone_action(name="no record, no clone"))
    poller.poll_once()
    assert poller.deliveries[message_id].responses == ["retry"]
    assert emulator.requests == []
    assert aws.dead_letters() == []


def test_a_delete_retried_after_partial_progress_succeeds_whatever_datadog_answers_for_gone_ids(
    aws: Aws, emulator: DatadogEmulator, poller: Poller, function_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN Datadog refuses deletes that name an already-deleted experiment, and chunks of one id
    emulator.refuse_deleting_gone_experiments = True
    monkeypatch.setenv("DELETE_CHUNK_SIZE", "1")
    handler.processor.cache_clear()
    # ...and a first attempt deleted the first id, then met an outage on the second
    emulator.inject(Fault(status=503, times=1, path_contains="/experiments/delete", skip=1))
    message_id = send(aws, delete_action())
    poller.poll_once()
    assert poller.deliveries[message_id].responses == ["retry"]
    assert emulator.experiments[EXPERIMENT_IDS[0]].deleted_at

    # WHEN the message comes back
    assert poller.run_until_empty(timeout_seconds=20)

    # THEN it is done, not dead-lettered, and every experiment is deleted
    assert poller.deliveries[message_id].responses[-1] == "done"
    assert all(emulator.experiments[i].deleted_at for i in EXPERIMENT_IDS)
    assert aws.dead_letters() == []


def test_a_first_delete_of_an_unknown_experiment_is_still_rejected(
    aws: Aws, emulator: DatadogEmulator, poller: Poller
) -> None:
    emulator.refuse_deleting_gone_experiments = True
    send(aws, delete_action(experiment_ids=["never-existed"]))
    assert poller.run_until_empty(timeout_seconds=20)
    [dead] = aws.dead_letters()
    assert (dead["attributes"]["error_class"], dead["attributes"]["http_status"]) == ("rejected", "404")


def test_a_sandbox_killed_in_the_middle_of_a_clone_is_finished_once(
    aws: Aws, emulator: DatadogEmulator, function_env: None, tmp_path: Path
) -> None:
    """The sandbox dies while Datadog is making the clone (its answer never comes back); the next delivery,
    once the dead invocation's deadline has passed, finds in the key's record what that attempt asked for,
    and adopts the dataset it made instead of cloning again."""
    emulator.inject(Fault(delay_seconds=5, path_contains="/clone"))  # done at once, answered too late
    environment = {"MIN_REMAINING_TIME_MS": "500", "RETRY_BASE_DELAY_SECONDS": "0"}
    with (tmp_path / "function.log").open("w") as log, LambdaRuntime(environment, 3, log=log) as runtime:

        def kill_during_the_clone() -> None:
            while not emulator.datasets_named("interrupted"):
                time.sleep(0.01)
            runtime.kill()

        killer = thread(kill_during_the_clone, "probe/killer")
        poller = Poller(aws.sqs, aws.queue_url, aws.queue_arn, runtime.invoke, batch_size=1)
        message_id = send(aws, clone_action(name="interrupted"))
        assert poller.run_until_empty(timeout_seconds=40)
        killer.join(timeout=5)
    delivery = poller.deliveries[message_id]
    assert delivery.responses[0].startswith("error: Sandbox.Timedout")
    assert delivery.responses[-1] == "done"
    assert runtime.cold_starts == 2
    assert len(emulator.datasets_named("interrupted")) == 1
    assert len(emulator.calls("POST", "/clone")) == 1


def test_a_clone_answered_after_the_deadline_is_given_up_in_time_and_adopted_by_its_retry(
    aws: Aws, emulator: DatadogEmulator, function_env: None, tmp_path: Path
) -> None:
    """Datadog clones at once but answers 8 s later, past a 3 s Lambda: the function stops waiting before
    its deadline (no sandbox killed), and the retry adopts the dataset instead of cloning again."""
    emulator.inject(Fault(delay_seconds=8, path_contains="/clone"))
    environment = {"DD_READ_TIMEOUT_SECONDS": "20", "MIN_REMAINING_TIME_MS": "500", "RETRY_BASE_DELAY_SECONDS": "0"}
    with (tmp_path / "function.log").open("w") as log, LambdaRuntime(environment, 3, log=log) as runtime:
        poller = Poller(aws.sqs, aws.queue_url, aws.queue_arn, runtime.invoke, batch_size=1)
        message_id = send(aws, clone_action(name="answered late"))
        assert poller.run_until_empty(timeout_seconds=40)
    # (a retry may come first: the attempt gave up with too little time to free the key, which its deadline frees)
    *retries, last = poller.deliveries[message_id].responses
    assert (set(retries), last) == ({"retry"}, "done")
    assert runtime.cold_starts == 1
    assert len(emulator.datasets_named("answered late")) == 1
    assert len(emulator.calls("POST", "/clone")) == 1


def test_with_idempotency_off_a_warning_is_logged_and_actions_still_run(
    aws: Aws,
    emulator: DatadogEmulator,
    function_env: None,
    context: FakeLambdaContext,
    log_output: LogOutput,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("IDEMPOTENCY_TABLE")
    handler.processor.cache_clear()
    handler.lambda_handler({"Records": []}, context)
    assert any("idempotency is OFF" in line["message"] for line in log_output.lines())
    boto3.client("dynamodb").delete_table(TableName=aws.table_name)  # proof that nothing needs it
    send(aws, delete_action())
    message = aws.sqs.receive_message(QueueUrl=aws.queue_url, AttributeNames=["All"])["Messages"][0]
    assert handler.lambda_handler({"Records": [sqs_record(message, aws.queue_arn)]}, context) == {
        "batchItemFailures": []
    }


def test_conservation_with_duplicate_deliveries(aws: Aws, emulator: DatadogEmulator, poller: Poller) -> None:
    """Duplicates of every kind among random faults: every message accounted for once, every clone done once."""
    chance = random.Random(7)
    names: list[str] = []
    sent: list[str] = []
    for number in range(25):
        name = f"dup {number}"
        names.append(name)
        action = clone_action(name=name)
        style = chance.choice(["plain", "keyed", "eventbridge"])
        if style == "keyed":
            body: object = action | {"idempotency_key": f"key-{number}"}
        elif style == "eventbridge":
            body = eventbridge_event(action, f"evt-{number}")
        else:
            body = action
        copies = chance.choice([1, 2, 3]) if style != "plain" else 1
        sent += [send(aws, body) for _ in range(copies)]
    for _ in range(6):
        emulator.inject(
            Fault(status=chance.choice([500, 503, 429]), times=chance.randint(1, 2), headers={"X-RateLimit-Reset": "1"})
        )
    emulator.inject(Fault(delay_seconds=2.5, times=2, path_contains="/clone"))

    assert poller.run_until_empty(timeout_seconds=90)

    assert {m for m, d in poller.deliveries.items() if d.deleted} == set(sent), "every copy is handled"
    assert aws.dead_letters() == []
    for name in names:
        assert len(emulator.datasets_named(name)) == 1, f"{name} must be cloned exactly once"
    assert DATASET_ID in emulator.datasets


def test_an_action_whose_record_cannot_be_completed_is_reported_done_not_retried(
    aws: Aws, emulator: DatadogEmulator, poller: Poller, log_output: LogOutput
) -> None:
    # GIVEN DynamoDB takes the in-progress record but fails every update that would complete it
    assert aws.front is not None
    aws.front.inject(
        AwsFault(
            target="DynamoDB_20120810.UpdateItem",
            code="InternalServerError",
            status=500,
            times=10,
            body_contains="COMPLETED",
        )
    )
    message_id = send(aws, clone_action(name="ran, not recorded"))

    # WHEN the clone runs
    assert poller.run_until_empty(timeout_seconds=20)

    # THEN the message is done (retrying would clone again) and the log says what happened
    assert poller.deliveries[message_id].responses == ["done"]
    assert len(emulator.datasets_named("ran, not recorded")) == 1
    assert any("record could not be completed" in line["message"] for line in log_output.lines())
    assert not any("not performed" in json.dumps(line) for line in log_output.lines())


def test_a_stored_result_stays_small_whatever_the_number_of_ids(
    aws: Aws, emulator: DatadogEmulator, poller: Poller, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a prune that deletes 10,000 experiments, the most a deployment may allow
    monkeypatch.setenv("MAX_EXPERIMENT_IDS", "10000")
    handler.processor.cache_clear()
    for number in range(10_000):
        emulator.add_experiment(PROJECT_ID, DATASET_ID, f"bulk-{number}", created_at="2026-01-01T00:00:00Z")
    message_id = send(
        aws,
        {"action": "prune_experiments", "project_id": PROJECT_ID, "name_prefix": "bulk-", "max_deletions": 10_000},
    )

    # WHEN it runs
    assert poller.run_until_empty(timeout_seconds=120)

    # THEN it is done once, and its idempotency record is small (DynamoDB refuses items over 400 KB)
    assert poller.deliveries[message_id].responses == ["done"]
    assert sum(1 for e in emulator.experiments.values() if e.deleted_at) == 10_000
    [record] = boto3.client("dynamodb").scan(TableName=aws.table_name)["Items"]
    assert len(json.dumps(record)) < 4_000


def test_the_same_delete_resent_with_its_ids_in_another_order_is_a_duplicate(
    aws: Aws, emulator: DatadogEmulator, poller: Poller
) -> None:
    # GIVEN a delete done under a key
    send(aws, delete_action(idempotency_key="cleanup-7"))
    assert poller.run_until_empty(timeout_seconds=20)

    # WHEN the producer resends it with the same ids in another order
    resent = send(aws, delete_action(experiment_ids=list(reversed(EXPERIMENT_IDS)), idempotency_key="cleanup-7"))
    assert poller.run_until_empty(timeout_seconds=20)

    # THEN it is the same request: a duplicate, not a conflict in the DLQ
    assert poller.deliveries[resent].responses == ["done"]
    assert aws.dead_letters() == []
    assert len(emulator.calls("POST", "/experiments/delete")) == 1


def test_a_record_the_previous_release_wrote_with_powertools_still_matches(
    aws: Aws, emulator: DatadogEmulator, poller: Poller
) -> None:
    """The previous release kept its records with Powertools Idempotency, its ids in the order given: a delivery
    across the deployment must find the stored result, not run again, nor call it a different request."""
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    from llmobs_actions.contract import parse_action
    from llmobs_actions.idempotency import KEY_PREFIX, legacy_fingerprint

    # GIVEN a delete, its ids not in order, completed under the previous release (written as it wrote it)
    ids = sorted(EXPERIMENT_IDS, reverse=True)
    action = parse_action(delete_action(experiment_ids=ids, idempotency_key="before-the-upgrade"))
    config = IdempotencyConfig(
        event_key_jmespath="key", payload_validation_jmespath="fingerprint", raise_on_no_idempotency_key=True
    )
    config.register_lambda_context(FakeLambdaContext())  # as the previous release did on every invocation
    layer = DynamoDBPersistenceLayer(table_name=aws.table_name, boto3_client=boto3.client("dynamodb"))

    @idempotent_function(data_keyword_argument="request", persistence_store=layer, config=config, key_prefix=KEY_PREFIX)
    def previous_release(request: dict[str, str]) -> dict[str, object]:
        return {"summary": "deleted 2 experiment(s)", "details": {"deleted": 2, "already_gone": 0}}

    stored = {"key": "delete_experiments:before-the-upgrade", "fingerprint": legacy_fingerprint(action)}
    previous_release(request=stored)

    # WHEN the same message is delivered again after the deployment
    message_id = send(aws, delete_action(experiment_ids=ids, idempotency_key="before-the-upgrade"))
    assert poller.run_until_empty(timeout_seconds=20)

    # THEN the stored result stands: a duplicate, Datadog not called
    assert poller.deliveries[message_id].responses == ["done"]
    assert emulator.calls("POST", "/experiments/delete") == []
    assert aws.dead_letters() == []
    [event] = aws.result_events()
    assert (event["detail"]["duplicate"], event["detail"]["result"]["deleted"]) == (True, 2)


def test_an_action_costs_two_dynamodb_writes_as_before(aws: Aws, emulator: DatadogEmulator, poller: Poller) -> None:
    assert aws.front is not None
    aws.front.calls.clear()
    send(aws, clone_action(name="two writes"))
    assert poller.run_until_empty(timeout_seconds=20)
    writes = {target: n for target, n in aws.front.calls.items() if target.startswith("DynamoDB_20120810.")}
    assert writes == {"DynamoDB_20120810.UpdateItem": 2}  # take the key with the attempt, then complete it
