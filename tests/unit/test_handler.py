"""The handler end to end: real adapters against moto (server mode) and the Datadog emulator."""

from __future__ import annotations

import json
import time

import pytest

from llmobs_actions import handler
from local.datadog_emulator import DatadogEmulator, Fault
from tests.conftest import (
    API_KEY,
    APP_KEY,
    DATASET_ID,
    EXPERIMENT_IDS,
    PROJECT_ID,
    SECRET_ID,
    Aws,
    FakeLambdaContext,
    LogOutput,
    clone_action,
    delete_action,
    sqs_event,
    sqs_record,
)

pytestmark = pytest.mark.usefixtures("function_env")


def failed_ids(response: dict[str, list[dict[str, str]]]) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def test_mixed_batch_settles_each_record_by_the_policy(
    aws: Aws, emulator: DatadogEmulator, context: FakeLambdaContext
) -> None:
    # GIVEN a batch: a clone, a delete, a body that is not JSON, a clone of a missing dataset,
    # and a clone that will meet a Datadog outage
    emulator.add_dataset(PROJECT_ID, "other", dataset_id="other-dataset")
    emulator.inject(Fault(status=503, times=1, path_contains="/other-dataset/clone"))
    event = sqs_event(
        clone_action(dataset_id="other-dataset", name="outage"),
        "not json at all",
        clone_action(dataset_id="missing-dataset", name="orphan"),
        delete_action(),
    )

    # WHEN the handler runs
    response = handler.lambda_handler(event, context)

    # THEN the outage is retried, the two permanent failures are in the DLQ with their reasons,
    # and the delete is done
    records = event["Records"]
    assert failed_ids(response) == [records[0]["messageId"]]
    dead = {d["attributes"]["source_message_id"]: d for d in aws.dead_letters()}
    assert set(dead) == {records[1]["messageId"], records[2]["messageId"]}
    invalid = dead[records[1]["messageId"]]
    assert invalid["body"] == "not json at all"
    assert invalid["attributes"]["error_class"] == "invalid"
    assert invalid["attributes"]["error_message"].startswith("body is not JSON")
    assert invalid["attributes"]["receive_count"] == "1"
    assert invalid["attributes"]["source_queue_arn"].endswith(":llmobs-actions-dev-actions")
    assert "failed_at" in invalid["attributes"]
    rejected = dead[records[2]["messageId"]]
    assert rejected["body"] == records[2]["body"]
    assert rejected["attributes"]["error_class"] == "rejected"
    assert rejected["attributes"]["http_status"] == "404"
    assert "dataset not found" in rejected["attributes"]["datadog_error"]
    assert all(emulator.experiments[i].deleted_at for i in EXPERIMENT_IDS)


def test_batch_records_wait_on_datadog_together(emulator: DatadogEmulator, context: FakeLambdaContext) -> None:
    # GIVEN a slow Datadog and a batch of ten clones
    emulator.latency_seconds = 0.5  # longer than ten idempotency writes on a busy moto take
    event = sqs_event(*(clone_action(name=f"snapshot {n}") for n in range(10)))

    # WHEN the handler runs
    response = handler.lambda_handler(event, context)

    # THEN all succeed, and Datadog saw them in flight together, not one by one
    assert response == {"batchItemFailures": []}
    assert len(emulator.calls("POST", "/clone")) == 10
    # MAX_WORKERS defaults to 10; a busy machine may start the last one a little late, never one by one
    assert 8 <= emulator.max_in_flight <= 10, emulator.max_in_flight


def test_throttled_message_stays_invisible_until_the_rate_limit_resets(
    aws: Aws, emulator: DatadogEmulator, context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a real queue message (visibility timeout 1 s), Datadog answering 429, reset in 5 s,
    # and a function that waits for no reset in the invocation
    monkeypatch.setenv("MAX_THROTTLE_WAIT_SECONDS", "0")
    emulator.inject(Fault(status=429, times=1, headers={"X-RateLimit-Reset": "5"}))
    record = aws.send_and_receive(json.dumps(delete_action()))

    # WHEN the handler runs
    response = handler.lambda_handler({"Records": [record]}, context)

    # THEN the message is retried, and it is still invisible after the queue's own 1 s timeout
    assert failed_ids(response) == [record["messageId"]]
    time.sleep(1.5)
    again = aws.sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=1)
    assert again.get("Messages", []) == []
    assert aws.dead_letters() == []


def test_rotated_keys_are_refetched_once(aws: Aws, emulator: DatadogEmulator, context: FakeLambdaContext) -> None:
    # GIVEN the keys were rotated in Datadog and in the secret after the function cached them
    assert handler.lambda_handler(sqs_event(delete_action()), context) == {"batchItemFailures": []}
    emulator.rotate_keys("new-api-key", "new-app-key")
    aws.secrets.put_secret_value(
        SecretId=SECRET_ID, SecretString=json.dumps({"api_key": "new-api-key", "app_key": "new-app-key"})
    )

    # WHEN the next message arrives
    response = handler.lambda_handler(sqs_event(clone_action()), context)

    # THEN the function refetched the secret after the 401 and succeeded with the new keys
    assert response == {"batchItemFailures": []}
    clones = emulator.calls("POST", "/clone")
    assert [c.headers["DD-API-KEY"] for c in clones] == [API_KEY, "new-api-key"]


def test_keys_refused_for_good_are_retried_not_dead_lettered(
    aws: Aws, emulator: DatadogEmulator, context: FakeLambdaContext
) -> None:
    # GIVEN Datadog refuses the application key, before and after a refetch
    emulator.rotate_keys(API_KEY, "some-other-app-key")
    event = sqs_event(clone_action())

    # WHEN the handler runs
    response = handler.lambda_handler(event, context)

    # THEN it tried twice (once after refetching) and left the message for a later retry
    assert failed_ids(response) == [event["Records"][0]["messageId"]]
    assert len(emulator.calls("POST", "/clone")) == 2
    assert aws.dead_letters() == []


def test_a_clone_with_no_answer_is_adopted_on_retry_not_repeated(
    monkeypatch: pytest.MonkeyPatch, aws: Aws, emulator: DatadogEmulator, context: FakeLambdaContext
) -> None:
    # GIVEN Datadog makes the clone but answers after the client's 2 s read timeout,
    # and retries come back after the queue's own 1 s visibility timeout
    monkeypatch.setenv("RETRY_BASE_DELAY_SECONDS", "0")
    emulator.inject(Fault(delay_seconds=3, path_contains="/clone"))
    record = aws.send_and_receive(json.dumps(clone_action(name="nightly")))
    first = handler.lambda_handler({"Records": [record]}, context)
    assert failed_ids(first) == [record["messageId"]]
    assert len(emulator.datasets_named("nightly")) == 1

    # WHEN the message comes back (second receive)
    again = aws.sqs.receive_message(QueueUrl=aws.queue_url, AttributeNames=["All"], WaitTimeSeconds=5)["Messages"]
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"
    response = handler.lambda_handler({"Records": [sqs_record(again[0], aws.queue_arn)]}, context)

    # THEN the function finds the dataset the first try made instead of cloning a second one
    assert response == {"batchItemFailures": []}
    assert len(emulator.datasets_named("nightly")) == 1
    assert len(emulator.calls("POST", "/clone")) == 1


def test_too_little_time_leaves_the_batch_untouched(
    aws: Aws, emulator: DatadogEmulator, context: FakeLambdaContext
) -> None:
    # GIVEN a Lambda with almost no time left
    context.remaining_ms = 500
    event = sqs_event(clone_action(), delete_action())

    # WHEN the handler runs
    response = handler.lambda_handler(event, context)

    # THEN every record goes back to the queue, no call was started and nothing was dead-lettered
    assert failed_ids(response) == [r["messageId"] for r in event["Records"]]
    assert emulator.requests == []
    assert aws.dead_letters() == []


def test_a_message_is_never_lost_when_the_dlq_cannot_be_reached(
    monkeypatch: pytest.MonkeyPatch, aws: Aws, emulator: DatadogEmulator, context: FakeLambdaContext
) -> None:
    # GIVEN a dead-letter queue that does not exist
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", aws.dlq_url + "-gone")
    handler.processor.cache_clear()
    event = sqs_event("{broken")

    # WHEN an invalid message arrives
    response = handler.lambda_handler(event, context)

    # THEN it is reported failed, so it stays in the source queue
    assert failed_ids(response) == [event["Records"][0]["messageId"]]


def test_direct_eventbridge_invocation(aws: Aws, emulator: DatadogEmulator, context: FakeLambdaContext) -> None:
    event = {
        "version": "0",
        "id": "evt-1",
        "detail-type": "LLMObs Action",
        "source": "tests",
        "account": "1",
        "time": "2026-11-22T03:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": clone_action(name="direct"),
    }

    # a success returns a summary
    result = handler.lambda_handler(event, context)
    assert result["status"] == "done"
    assert len(emulator.datasets_named("direct")) == 1

    # a permanent failure is dead-lettered by the function itself, with the whole event as body
    broken = event | {"id": "evt-2", "detail": clone_action(project_id="a/b")}
    assert handler.lambda_handler(broken, context)["status"] == "dead_lettered"
    [dead] = aws.dead_letters()
    assert json.loads(dead["body"]) == broken
    assert dead["attributes"]["source_message_id"] == "evt-2"

    # a transient failure raises, so Lambda's async retries and OnFailure destination take over
    emulator.inject(Fault(status=502, times=1))
    with pytest.raises(handler.RetryLaterError):
        handler.lambda_handler(event | {"id": "evt-3", "detail": delete_action()}, context)


def test_a_2xx_with_an_unexpected_body_is_success_and_not_retried(
    monkeypatch: pytest.MonkeyPatch,
    emulator: DatadogEmulator,
    context: FakeLambdaContext,
    log_output: LogOutput,
) -> None:
    # GIVEN a Datadog whose clone answer drifted from the spec (no current_version)
    original = emulator._clone

    def drifted(**kwargs: object) -> tuple[int, object]:
        status, body = original(**kwargs)  # type: ignore[arg-type]
        del body["data"]["attributes"]["current_version"]
        return status, body

    monkeypatch.setattr(emulator, "_clone", drifted)

    # WHEN a clone runs
    response = handler.lambda_handler(sqs_event(clone_action(name="drift")), context)

    # THEN it counts as done (a retry would clone twice) and the drift is logged as a warning
    assert response == {"batchItemFailures": []}
    warnings = [line for line in log_output.lines() if line["level"] == "WARNING"]
    assert any(w.get("missing_fields") == ["data.attributes.current_version"] for w in warnings)


def test_logs_and_metrics_describe_every_message(
    emulator: DatadogEmulator,
    context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
    log_output: LogOutput,
) -> None:
    # GIVEN one good and one invalid message
    event = sqs_event(delete_action(), {"action": "delete_experiments", "experiment_ids": []})

    # WHEN the handler runs
    handler.lambda_handler(event, context)

    # THEN every per-message log line names its message and action, and EMF metrics were emitted
    wanted = ("experiments deleted", "message dead-lettered")
    per_message = [line for line in log_output.lines() if line.get("message") in wanted]
    assert {(line["message_id"], line.get("action")) for line in per_message} == {
        (event["Records"][0]["messageId"], "delete_experiments"),
        (event["Records"][1]["messageId"], "delete_experiments"),
    }
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    metric_blobs = [line for line in printed if "_aws" in line]
    emitted = {m["Name"] for blob in metric_blobs for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"ActionSucceeded", "ActionFailed", "DeadLettered", "DatadogLatency"} <= emitted
    failed = next(b for b in metric_blobs if "ActionFailed" in b)
    assert failed["error_class"] == "invalid"


def test_keys_never_leave_the_function(
    aws: Aws,
    emulator: DatadogEmulator,
    context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    log_output: LogOutput,
) -> None:
    # GIVEN every kind of failure the keys could leak through: auth refusals, errors, dead letters
    caplog.set_level("DEBUG")
    emulator.inject(Fault(status=403, times=2, path_contains="/clone"))
    emulator.inject(Fault(status=400, times=1, path_contains="/experiments/delete"))
    event = sqs_event(clone_action(), delete_action(), "][")

    # WHEN the handler runs
    handler.lambda_handler(event, context)
    emulator.inject(Fault(status=500, times=1))
    with pytest.raises(handler.RetryLaterError) as raised:
        handler.lambda_handler({"detail-type": "x", "detail": delete_action(), "id": "e"}, context)

    # THEN no key appears in stdout/stderr, log records, exception text or the DLQ
    captured = capsys.readouterr()
    dead = json.dumps(aws.dead_letters())
    logs = log_output.text
    haystacks = [captured.out, captured.err, caplog.text, logs, str(raised.value), repr(raised.value), dead]
    for key in (API_KEY, APP_KEY):
        leaks = [text[max(0, text.index(key) - 300) : text.index(key) + 50] for text in haystacks if key in text]
        assert leaks == []
    assert '"error_class": "rejected"' in dead  # the scan did see real failure output
    assert '"error_class":"auth"' in logs


def test_configuration_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch, context: FakeLambdaContext) -> None:
    monkeypatch.setenv("DD_SITE", "datadoghq.org")
    handler.processor.cache_clear()
    with pytest.raises(Exception, match=r"DD_SITE: .*datadoghq.org.*allowed: datadoghq.com"):
        handler.lambda_handler(sqs_event(delete_action()), context)


def test_dry_run_changes_nothing(emulator: DatadogEmulator, context: FakeLambdaContext) -> None:
    response = handler.lambda_handler(sqs_event(clone_action(dry_run=True), delete_action(dry_run=True)), context)
    assert response == {"batchItemFailures": []}
    assert emulator.requests == []
    assert not any(emulator.experiments[i].deleted_at for i in EXPERIMENT_IDS)
    assert [d.id for d in emulator.datasets.values()] == [DATASET_ID]
    assert PROJECT_ID in emulator.projects


def test_records_no_sqs_would_send_are_dead_lettered_each_on_its_own(
    aws: Aws, emulator: DatadogEmulator, context: FakeLambdaContext
) -> None:
    # GIVEN a hand-made event: two records without a messageId, one whose body is an object, one empty
    event = sqs_event(clone_action(name="no id 1"), clone_action(name="no id 2"), "placeholder", "")
    for record in event["Records"][:2]:
        del record["messageId"]
    event["Records"][2]["body"] = {"action": "clone_dataset"}

    # WHEN the handler runs
    response = handler.lambda_handler(event, context)

    # THEN each is in the DLQ with its own reason (none was taken for a duplicate of another), none loops
    assert response == {"batchItemFailures": []}
    dead = aws.dead_letters()
    assert len(dead) == 4
    reasons = sorted(d["attributes"]["error_message"] for d in dead)
    assert reasons == [
        "the record has no messageId",
        "the record has no messageId",
        "the record's body is empty",
        "the record's body is not a string (dict)",
    ]
    assert len({d["attributes"]["source_message_id"] for d in dead}) == 4
    assert {d["body"] for d in dead} >= {'""', '{"action": "clone_dataset"}'}
    assert emulator.calls("POST", "/clone") == []
