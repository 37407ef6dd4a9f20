"""Fuzzed input through the real handler: whatever arrives, the handler settles every record and sends
Datadog nothing outside the contract.

Properties, for arbitrary SQS events: the handler never raises; every record is done, reported in
batchItemFailures, or in the DLQ with an error_class; no request leaves for a path outside
/api/v2/llm-obs/v1/; every request Datadog receives satisfies the contract.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from llmobs_actions import handler
from llmobs_actions.contract import InvalidAction, parse_action
from llmobs_actions.messages import unwrap
from local.datadog_emulator import PREFIX, DatadogEmulator
from local.lambda_context import LambdaContext
from local.stack import (
    API_KEY,
    APP_KEY,
    AWS_TEST_ENVIRONMENT,
    DATASET_ID,
    EXPERIMENT_IDS,
    PROJECT_ID,
    AwsResources,
    create_resources,
    function_environment,
    reset_aws,
    seed,
)

SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
HOSTILE_IDS = ["../..", "a/b", "a?b=c", "a#b", "%2e%2e", "a b", "x\r\nX-Injected: 1", "\x00", "é", "", ".", "~"]

SQS_ILLEGAL = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def sqs_could_deliver(text: str) -> str:
    """A body SQS could hold: it refuses other characters when a producer sends them."""
    return SQS_ILLEGAL.sub("?", text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
ids = st.sampled_from([DATASET_ID, PROJECT_ID, *EXPERIMENT_IDS, *HOSTILE_IDS]) | st.text(max_size=40)
times = st.sampled_from(["2026-11-22T03:00:00Z", "2026-11-22T03:00:00.123+02:00", "2026-02-30T00:00:00Z", "today"])
counts = st.integers(min_value=-2, max_value=20_000)
actions = st.fixed_dictionaries(
    {
        "action": st.sampled_from(
            ["clone_dataset", "delete_experiments", "prune_experiments", "CLONE_DATASET", "drop_table", "\u0001x"]
        )
    },
    optional={
        "project_id": ids | json_values,
        "dataset_id": ids | json_values,
        "name": st.text(max_size=30) | st.sampled_from(["golden-{event_time:%Y-%m-%d}", "{source_name}", "{x}"]),
        "description": st.text(max_size=30) | json_values,
        "experiment_ids": st.lists(ids, max_size=5) | json_values,
        "idempotency_key": st.text(max_size=20) | json_values,
        "dry_run": st.booleans() | json_values,
        "event_time": times | json_values,
        "older_than_days": counts | json_values,
        "name_prefix": st.text(max_size=10) | json_values,
        "keep_newest": counts,
        "max_deletions": counts,
        "extra": json_values,
    },
)
envelopes = st.builds(
    lambda detail, event_id: {
        "version": "0",
        "id": event_id,
        "detail-type": "LLMObs Action",
        "source": "fuzz",
        "time": "2026-11-22T03:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    },
    actions | json_values,
    st.text(max_size=12) | st.none(),
)
bodies = (
    actions.map(json.dumps)
    | envelopes.map(json.dumps)
    | json_values.map(json.dumps)
    | st.text(max_size=200).map(sqs_could_deliver)
    | st.sampled_from(
        [
            "",
            "{",
            "[" * 5000 + "]" * 5000,
            "\ud800".encode("utf-8", "surrogatepass").decode("latin-1"),
            json.dumps({"action": "clone_dataset", "name": "x" * 260_000}),
        ]
    )
)
records = st.builds(
    lambda body, number, count: {
        "messageId": f"fuzz-{number}",
        "receiptHandle": f"handle-{number}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": count},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:llmobs-actions-dev-actions",
        "awsRegion": "us-east-1",
    },
    bodies | st.none() | st.integers() | st.dictionaries(st.text(max_size=5), json_values, max_size=2),
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(["1", "2", "0", "-3", "many", ""]),
)
events = st.lists(records, min_size=1, max_size=6, unique_by=lambda r: r["messageId"]).map(lambda r: {"Records": r})


@pytest.fixture(scope="module")
def stack(moto_endpoint: str) -> Iterator[tuple[AwsResources, DatadogEmulator]]:
    """One stack for every example (hypothesis runs many examples per test)."""
    patch = pytest.MonkeyPatch()
    for name, value in (AWS_TEST_ENVIRONMENT | {"AWS_ENDPOINT_URL": moto_endpoint}).items():
        patch.setenv(name, value)
    reset_aws(moto_endpoint)
    with DatadogEmulator(api_key=API_KEY, app_key=APP_KEY) as emulator:
        seed(emulator)
        resources = create_resources(moto_endpoint, visibility_timeout=1)
        for name, value in function_environment(resources, emulator).items():
            patch.setenv(name, value)
        patch.setenv("RETRY_BASE_DELAY_SECONDS", "0")
        handler.processor.cache_clear()
        yield resources, emulator
    handler.processor.cache_clear()
    patch.undo()


def drain_dead_letters(aws: AwsResources) -> None:
    """Empty the DLQ between examples (SQS allows one PurgeQueue a minute)."""
    while messages := aws.sqs.receive_message(QueueUrl=aws.dlq_url, MaxNumberOfMessages=10).get("Messages", []):
        aws.sqs.delete_message_batch(
            QueueUrl=aws.dlq_url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
        )


def can_never_succeed(body: object) -> bool:
    """What the contract refuses (the definition of a message no retry can help)."""
    if not isinstance(body, str) or not body:
        return True
    try:
        parse_action(unwrap(body).action, max_experiment_ids=1000)
    except InvalidAction:
        return True
    return False


def assert_contract(request: Any) -> None:
    assert request.path.startswith(f"{PREFIX}/"), request.path
    segments = request.path.removeprefix(f"{PREFIX}/").split("/")
    if request.path.endswith("/clone"):
        project, _, dataset, _ = segments
        assert SAFE_SEGMENT.match(project)
        assert SAFE_SEGMENT.match(dataset)
        data = request.body["data"]
        assert (data["type"], data["id"]) == ("datasets", dataset)
        assert isinstance(data["attributes"]["name"], str)
        assert data["attributes"]["name"].strip()
    elif request.path.endswith("/experiments/delete"):
        sent = request.body["data"]["attributes"]["experiment_ids"]
        assert 1 <= len(sent) <= 1000
        assert all(SAFE_SEGMENT.match(i) for i in sent)
    else:
        assert request.method == "GET", request.path  # the only other calls: reading datasets by name
    for header in request.headers.values():
        assert "\r" not in header
        assert "\n" not in header


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(event=events)
@example(
    event={
        "Records": [
            {
                "messageId": "m",
                "receiptHandle": "h",
                "body": json.dumps(
                    {
                        "action": "clone_dataset",
                        "project_id": "../../v1/experiments",
                        "dataset_id": "delete",
                        "name": "x",
                    }
                ),
                "attributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:1:q",
            }
        ]
    }
)
@example(
    event={
        "Records": [
            {
                "messageId": "m",
                "receiptHandle": "h",
                "body": json.dumps(
                    {
                        "action": "clone_dataset",
                        "project_id": PROJECT_ID,
                        "dataset_id": DATASET_ID,
                        "name": "x\r\nX-Evil: 1",
                    }
                ),
                "attributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:1:q",
            }
        ]
    }
)
def test_every_record_is_settled_and_datadog_sees_only_the_contract(
    stack: tuple[AwsResources, DatadogEmulator], event: dict[str, Any]
) -> None:
    aws, emulator = stack
    emulator.requests.clear()
    drain_dead_letters(aws)

    response = handler.lambda_handler(event, LambdaContext())  # must not raise

    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    dead = {d["attributes"]["source_message_id"]: d for d in aws.dead_letters()}
    for record in event["Records"]:
        message_id = record["messageId"]
        assert not (message_id in failed and message_id in dead), "both retried and dead-lettered"
        if can_never_succeed(record["body"]):
            assert message_id in dead, "a message that can never succeed is in the DLQ at once"
            assert dead[message_id]["attributes"]["error_class"] == "invalid"
            assert dead[message_id]["attributes"]["error_message"], "with its reason"
        if message_id in dead:
            assert dead[message_id]["attributes"]["error_class"] in ("invalid", "rejected")
            body = record["body"]
            assert dead[message_id]["body"] == (body if isinstance(body, str) and body else json.dumps(body))
    assert failed <= {r["messageId"] for r in event["Records"]}
    for request in emulator.requests:
        assert_contract(request)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=st.dictionaries(st.text(max_size=10), json_values, max_size=5) | envelopes)
def test_direct_invocations_never_lose_the_event(
    stack: tuple[AwsResources, DatadogEmulator], event: dict[str, Any]
) -> None:
    """Not an SQS event: settled (done or dead-lettered), or raised so that Lambda retries it."""
    aws, _ = stack
    drain_dead_letters(aws)
    try:
        result = handler.lambda_handler(event, LambdaContext())
    except handler.RetryLaterError:
        return
    assert result["status"] in ("done", "dead_lettered")
    if result["status"] == "dead_lettered":
        [dead] = aws.dead_letters()
        assert json.loads(dead["body"]) == json.loads(json.dumps(event, default=str))


def test_the_fuzzer_reaches_datadog_sometimes(stack: tuple[AwsResources, DatadogEmulator]) -> None:
    """Guard against a fuzzer that only ever produces garbage: a valid clone does reach the emulator."""
    aws, emulator = stack
    emulator.requests.clear()
    body = json.dumps(
        {"action": "clone_dataset", "project_id": PROJECT_ID, "dataset_id": DATASET_ID, "name": "from the fuzz module"}
    )
    event = {
        "Records": [
            {
                "messageId": "ok",
                "receiptHandle": "h",
                "body": body,
                "attributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": aws.queue_arn,
            }
        ]
    }
    assert handler.lambda_handler(event, LambdaContext()) == {"batchItemFailures": []}
    [request] = emulator.requests
    assert_contract(request)
