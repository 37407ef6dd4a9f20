"""Results back to producers: one result event per final outcome, and Step Functions task callbacks.

The function publishes on the local stack's default bus (the template's default ResultEventBusName); a
rule there, as a producer would set up, feeds the results queue these tests read. Task tokens come from
the strict front's Step Functions stand-in (local/task_tokens.py), which refuses what Step Functions does.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from llmobs_actions import handler
from llmobs_actions.results import FAILED, SUCCEEDED
from local.datadog_emulator import DatadogEmulator, Fault
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
from tests.doc_blocks import DOCUMENTS, blocks
from tests.integration.delivery import RESULT_SCHEMA, handle, published


def metrics_emitted(printed: str) -> set[str]:
    blobs = [json.loads(line) for line in printed.splitlines() if line.startswith("{") and '"_aws"' in line]
    return {m["Name"] for blob in blobs for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}


def test_a_clone_announces_its_new_dataset_to_whoever_asked(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    # GIVEN a clone that says who asked
    action = clone_action(name="nightly", correlation_id="ci-run-4711", idempotency_key="nightly-2026-12-02")

    # WHEN it is done
    assert handle(aws, context, action) == {"batchItemFailures": []}

    # THEN one success event names the new dataset, echoes the correlation id and the key
    [event] = published(aws)
    [created] = emulator.datasets_named("nightly")
    assert (event["source"], event["detail-type"]) == ("llmobs.actions", SUCCEEDED)
    detail = event["detail"]
    assert detail["result"] == {"new_dataset_id": created.id, "name": "nightly", "current_version": 0}
    assert detail["correlation_id"] == "ci-run-4711"
    assert detail["idempotency_key"] == "nightly-2026-12-02"
    assert (detail["action"], detail["status"], detail["error"]) == ("clone_dataset", "succeeded", None)
    assert (detail["dry_run"], detail["duplicate"], detail["receive_count"]) == (False, False, 1)
    assert detail["finished_at"].endswith("Z")


def test_a_dry_run_announces_what_it_would_have_done(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    handle(aws, context, delete_action(dry_run=True, correlation_id="look-first"))

    [event] = published(aws)
    assert event["detail-type"] == SUCCEEDED
    assert event["detail"]["dry_run"] is True
    assert event["detail"]["result"]["to_delete"] == len(EXPERIMENT_IDS)
    assert emulator.calls("POST", "/experiments/delete") == []


def test_a_duplicate_delivery_announces_the_stored_result_again(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    # GIVEN a clone done under a key, whose event the producer may have missed
    action = clone_action(name="once", idempotency_key="once-key", correlation_id="first")
    handle(aws, context, action)

    # WHEN the same key is sent again (a resend with a new correlation id)
    handle(aws, context, action | {"correlation_id": "second"})

    # THEN the second event repeats the first's result, marked as a duplicate, with its own correlation id
    first, second = published(aws)
    assert len(emulator.calls("POST", "/clone")) == 1
    assert second["detail"]["duplicate"] is True
    assert first["detail"]["duplicate"] is False
    assert second["detail"]["result"] == first["detail"]["result"]
    assert (first["detail"]["correlation_id"], second["detail"]["correlation_id"]) == ("first", "second")


def test_a_dead_lettered_message_announces_why(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    # GIVEN a clone of a dataset Datadog does not have
    handle(aws, context, clone_action(dataset_id="00000000-0000-4000-8000-000000000000", correlation_id="gone"))

    # THEN it is dead-lettered and a failure event gives the class, the reason and Datadog's status
    [letter] = aws.dead_letters()
    [event] = published(aws)
    assert event["detail-type"] == FAILED
    detail = event["detail"]
    assert detail["status"] == "failed"
    assert detail["result"] is None
    assert detail["error"]["class"] == letter["attributes"]["error_class"] == "rejected"
    assert detail["error"]["http_status"] == 404
    assert detail["error"]["message"] == letter["attributes"]["error_message"]
    assert detail["correlation_id"] == "gone"


def test_an_invalid_message_still_echoes_its_correlation_id(
    aws: Aws, function_env: None, context: FakeLambdaContext
) -> None:
    handle(aws, context, {"action": "delete_experiments", "experiment_ids": [], "correlation_id": "bad-one"})

    [event] = published(aws)
    assert event["detail-type"] == FAILED
    assert event["detail"]["error"]["class"] == "invalid"
    assert event["detail"]["error"]["http_status"] is None
    assert event["detail"]["correlation_id"] == "bad-one"


def test_a_message_that_will_be_retried_announces_nothing_until_its_last_receive(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    # GIVEN Datadog failing with 503
    emulator.inject(Fault(status=503, times=100, path_contains="/clone"))

    # WHEN a clone fails on its first receive, it goes back to its queue and nothing is announced
    response = handle(aws, context, clone_action(correlation_id="patient"))
    assert len(response["batchItemFailures"]) == 1
    assert published(aws) == []

    # WHEN it fails on its last receive (maxReceiveCount), the function dead-letters it and announces it
    last = aws.values.max_receive_count
    handle(aws, context, clone_action(correlation_id="patient"), receive_count=last)
    [event] = published(aws)
    assert event["detail-type"] == FAILED
    assert (event["detail"]["receive_count"], event["detail"]["error"]["http_status"]) == (last, 503)


def test_result_events_are_never_taken_for_actions(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    # GIVEN results published on the very bus the actions rule listens to (the template's defaults)
    handle(aws, context, clone_action(name="looped?"))
    [result_event] = published(aws)

    # THEN the actions rule did not forward it: the actions queue is empty
    assert aws.sqs.receive_message(QueueUrl=aws.queue_url, WaitTimeSeconds=1).get("Messages", []) == []

    # AND a result event that reaches the queue anyway (a producer's rule too wide) is dead-lettered, not
    # acted on, and announces nothing, so that no loop can start
    handle(aws, context, result_event)
    [letter] = aws.dead_letters()
    assert letter["attributes"]["error_class"] == "invalid"
    assert "result event" in letter["attributes"]["error_message"]
    assert published(aws) == []
    assert len(emulator.calls("POST", "/clone")) == 1


def test_a_huge_input_still_gives_an_event_eventbridge_takes(
    aws: Aws, function_env: None, context: FakeLambdaContext
) -> None:
    # GIVEN an invalid message whose error message quotes a very long field
    handle(aws, context, {"action": "clone_dataset", "project_id": "p" * 200_000, "dataset_id": "d", "name": "n"})

    # THEN the failure event was accepted (the front refuses an entry over 256 KB) and stays small
    assert aws.front is not None
    [event] = published(aws)
    assert event["detail"]["error"]["class"] == "invalid"
    assert len(json.dumps(event["detail"]).encode()) < 8_000
    assert ("AWSEvents.PutEvents", "ValidationException") not in aws.front.refused


@pytest.mark.parametrize(
    "fault",
    [
        AwsFault(
            target="AWSEvents.PutEvents",
            answer={"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "later"}]},
        ),
        AwsFault(target="AWSEvents.PutEvents", code="ThrottlingException", message="Rate exceeded"),
    ],
    ids=["failed-entry", "throttled"],
)
def test_a_publishing_hiccup_is_retried_briefly(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext, fault: AwsFault
) -> None:
    assert aws.front is not None
    aws.front.inject(fault)

    assert handle(aws, context, clone_action(name="hiccup")) == {"batchItemFailures": []}

    [event] = published(aws)
    assert event["detail"]["result"]["name"] == "hiccup"


def test_a_result_that_cannot_be_published_never_fails_or_repeats_the_action(
    aws: Aws,
    emulator: DatadogEmulator,
    function_env: None,
    context: FakeLambdaContext,
    log_output: LogOutput,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN EventBridge failing every entry, for longer than the function tries
    assert aws.front is not None
    failed = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "down"}]}
    aws.front.inject(AwsFault(target="AWSEvents.PutEvents", answer=failed, times=100))

    # WHEN a clone is done
    response = handle(aws, context, clone_action(name="unannounced"))

    # THEN the message is done, cloned once, and the failure to publish is logged and counted
    assert response == {"batchItemFailures": []}
    assert len(emulator.calls("POST", "/clone")) == 1
    assert aws.dead_letters() == []
    assert published(aws) == []
    errors = [line for line in log_output.lines() if line["message"].startswith("result event not published")]
    assert [line["problem"] for line in errors] == ["InternalFailure: down"]
    assert "ResultPublishFailed" in metrics_emitted(capsys.readouterr().out)


def test_no_result_events_when_the_bus_is_unset(
    aws: Aws, function_env: None, context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RESULT_EVENT_BUS")
    handler.processor.cache_clear()

    assert handle(aws, context, clone_action(name="quiet")) == {"batchItemFailures": []}

    assert published(aws) == []


def test_result_event_source_can_be_renamed(
    aws: Aws, function_env: None, context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a producer's rule that listens for its own source
    monkeypatch.setenv("RESULT_EVENT_SOURCE", "team.evals")
    handler.processor.cache_clear()
    events = aws_events()
    rule = "team-results"
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["team.evals"]}))
    queue_url = aws.sqs.create_queue(QueueName="team-results")["QueueUrl"]
    arn = aws.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": arn}])

    handle(aws, context, clone_action(name="renamed"))

    [message] = aws.sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
    assert json.loads(message["Body"])["source"] == "team.evals"


def aws_events() -> Any:
    import boto3

    return boto3.client("events")


def test_a_batch_of_ten_announces_in_one_put_events_request(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    # GIVEN ten clones delivered as one batch
    assert aws.front is not None
    records = [
        aws.send_and_receive(json.dumps(clone_action(name=f"batch {n}", correlation_id=f"c{n}"))) for n in range(10)
    ]
    aws.front.calls.clear()

    # WHEN the batch is handled
    assert handler.lambda_handler({"Records": records}, context) == {"batchItemFailures": []}

    # THEN every message has its event, and EventBridge was asked once
    assert sorted(e["detail"]["correlation_id"] for e in published(aws)) == sorted(f"c{n}" for n in range(10))
    assert aws.front.calls["AWSEvents.PutEvents"] == 1


def test_an_entry_refused_in_a_batch_is_tried_again_alone(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    # GIVEN EventBridge refuses the second of two entries once (an internal failure, as it can)
    assert aws.front is not None
    refused_second = {
        "FailedEntryCount": 1,
        "Entries": [
            {"EventId": "11111111-1111-1111-1111-111111111111"},
            {"ErrorCode": "InternalFailure", "ErrorMessage": "x"},
        ],
    }
    aws.front.inject(AwsFault("AWSEvents.PutEvents", answer=refused_second, times=1))
    records = [
        aws.send_and_receive(json.dumps(clone_action(name=f"pair {n}", correlation_id=f"p{n}"))) for n in range(2)
    ]

    handler.lambda_handler({"Records": records}, context)

    # THEN the refused one went out on the retry, alone (the canned answer swallowed the other's event)
    [event] = published(aws)
    assert event["detail"]["correlation_id"] in ("p0", "p1")
    assert aws.front.calls["AWSEvents.PutEvents"] == 2


# -- Step Functions task tokens -------------------------------------------------------------------------


def test_a_task_token_gets_the_success_detail_as_output(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext, log_output: LogOutput
) -> None:
    # GIVEN a state machine waiting on a clone it sent with its task token
    assert aws.front is not None
    token = aws.front.task_tokens.issue(timeout_seconds=300)

    # WHEN the clone is done
    handle(aws, context, clone_action(name="for-the-state-machine", task_token=token))

    # THEN the task succeeded with the success event's detail, and the token was logged nowhere
    task = aws.front.task_tokens.task(token)
    [created] = emulator.datasets_named("for-the-state-machine")
    assert task.status == "SUCCEEDED"
    assert task.output["result"]["new_dataset_id"] == created.id
    assert task.output == published(aws)[0]["detail"]
    assert token not in log_output.text


def test_a_task_token_gets_the_failure_class_and_reason(
    aws: Aws, function_env: None, context: FakeLambdaContext
) -> None:
    assert aws.front is not None
    token = aws.front.task_tokens.issue(timeout_seconds=300)

    handle(aws, context, {"action": "delete_experiments", "experiment_ids": [], "task_token": token})

    task = aws.front.task_tokens.task(token)
    [letter] = aws.dead_letters()
    assert (task.status, task.error) == ("FAILED", "invalid")
    assert task.cause == letter["attributes"]["error_message"]
    assert token not in json.dumps(letter["attributes"])


def test_a_task_is_not_answered_while_its_message_will_be_retried(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    assert aws.front is not None
    token = aws.front.task_tokens.issue(timeout_seconds=300)
    emulator.inject(Fault(status=503, times=1, path_contains="/clone"))

    first = handle(aws, context, clone_action(name="second-time-lucky", task_token=token))
    assert len(first["batchItemFailures"]) == 1
    assert aws.front.task_tokens.task(token).status == "WAITING"

    handle(aws, context, clone_action(name="second-time-lucky", task_token=token), receive_count=2)
    assert aws.front.task_tokens.task(token).status == "SUCCEEDED"


@pytest.mark.parametrize("case", ["timed-out", "invalid"])
def test_a_task_that_is_over_is_logged_and_counted_never_retried(
    aws: Aws,
    emulator: DatadogEmulator,
    function_env: None,
    context: FakeLambdaContext,
    log_output: LogOutput,
    capsys: pytest.CaptureFixture[str],
    case: str,
) -> None:
    # GIVEN a token whose task timed out, or one Step Functions never issued
    assert aws.front is not None
    token = aws.front.task_tokens.issue(timeout_seconds=0) if case == "timed-out" else "AQB" + "x" * 400

    # WHEN the clone it asked for is done
    response = handle(aws, context, clone_action(name=f"late-{case}", task_token=token))

    # THEN the message is done (not retried: nothing would change), and the refusal is logged and counted
    assert response == {"batchItemFailures": []}
    assert len(emulator.datasets_named(f"late-{case}")) == 1
    code = "TaskTimedOut" if case == "timed-out" else "InvalidToken"
    assert ("AWSStepFunctions.SendTaskSuccess", code) in aws.front.refused
    [warning] = [line for line in log_output.lines() if line.get("error_code") == code]
    assert "task is over" in warning["message"]
    assert "TaskCallbackFailed" in metrics_emitted(capsys.readouterr().out)
    assert token not in log_output.text


def test_a_task_token_of_a_duplicate_delivery_is_answered_with_the_stored_result(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    # GIVEN a clone already done under a key, and a second state machine run asking for the same key
    assert aws.front is not None
    handle(aws, context, clone_action(name="shared", idempotency_key="shared-key"))
    token = aws.front.task_tokens.issue(timeout_seconds=300)

    handle(aws, context, clone_action(name="shared", idempotency_key="shared-key", task_token=token))

    task = aws.front.task_tokens.task(token)
    assert task.status == "SUCCEEDED"
    assert task.output["duplicate"] is True
    assert task.output["result"]["new_dataset_id"] == emulator.datasets_named("shared")[0].id
    assert DATASET_ID not in task.output["result"].values()


def documented_json_blocks() -> list[Any]:
    """Every JSON document in the json blocks of the README and docs/ (a block may hold several)."""
    decoder, documents = json.JSONDecoder(), []
    for block in [body for page in DOCUMENTS for body in blocks(page, "json")]:
        position = 0
        while block[position:].strip():
            position += len(block[position:]) - len(block[position:].lstrip())
            document, position = decoder.raw_decode(block, position)
            documents.append(document)
    return documents


def step_functions_parameters(node: Any, state: dict[str, Any], context: dict[str, Any]) -> Any:
    """A Task state's Parameters as Step Functions fills them: "key.$" takes a path or States.Format."""

    def path(expression: str) -> Any:
        root, rest = (context, expression[3:]) if expression.startswith("$$.") else (state, expression[2:])
        for part in rest.split("."):
            root = root[part]
        return root

    def value(expression: str) -> Any:
        formatted = re.fullmatch(r"States\.Format\('([^']*)', (\$[^)]+)\)", expression)
        return formatted.group(1).replace("{}", str(path(formatted.group(2)))) if formatted else path(expression)

    if not isinstance(node, dict):
        return node
    return {
        key.removesuffix(".$"): value(item) if key.endswith(".$") else step_functions_parameters(item, state, context)
        for key, item in node.items()
    }


def test_the_readme_state_machine_gets_its_snapshot_and_hands_the_new_id_on(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    # GIVEN the README's state machine, at its Snapshot step for one execution
    [machine] = [block for block in documented_json_blocks() if "StartAt" in block]
    snapshot, run = machine["States"]["Snapshot"], machine["States"][machine["States"]["Snapshot"]["Next"]]
    assert snapshot["Resource"] == "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
    token = aws.front.task_tokens.issue(timeout_seconds=snapshot["TimeoutSeconds"])
    execution_input = {"project_id": PROJECT_ID, "dataset_id": DATASET_ID}
    step_context = {
        "Execution": {"Name": "nightly-42", "Id": "arn:aws:states:us-east-1:123456789012:execution:evals:nightly-42"},
        "Task": {"Token": token},
    }
    body = step_functions_parameters(snapshot["Parameters"], execution_input, step_context)["MessageBody"]

    # WHEN the message it sends is handled
    assert handle(aws, context, body) == {"batchItemFailures": []}

    # THEN the task succeeds, and the next step's payload names the snapshot
    task = aws.front.task_tokens.task(token)
    [created] = emulator.datasets_named("eval-nightly-42")
    assert task.status == "SUCCEEDED"
    state = execution_input | {snapshot["ResultPath"].removeprefix("$."): task.output}
    payload = step_functions_parameters(run["Parameters"], state, step_context)["Payload"]
    assert payload == {"dataset_id": created.id, "version": 0}


def test_the_readme_result_events_are_valid_under_the_schema() -> None:
    examples = [block for block in documented_json_blocks() if isinstance(block, dict) and "detail-type" in block]
    assert {example["detail-type"] for example in examples} == {SUCCEEDED, FAILED}
    for example in examples:
        RESULT_SCHEMA.validate(example)
