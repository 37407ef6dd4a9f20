"""The fault matrix: one test per way things break, each asserting conservation on the local stack.

Conservation: every message sent is, at the end, either handled (deleted from its queue: done, or
dead-lettered by the function with its reason) or moved to the DLQ by SQS's redrive; never both, never
neither; and no clone happened twice.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from llmobs_actions import handler
from local.datadog_emulator import DatadogEmulator, Fault
from local.lambda_context import LambdaContext
from local.poller import Poller, in_process
from local.servers import LocalHandler, LocalServer
from tests.conftest import SECRET_ID, Aws, clone_action, delete_action
from tests.integration.conservation import account


def send(aws: Aws, body: object) -> str:
    text = body if isinstance(body, str) else json.dumps(body)
    return str(aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=text)["MessageId"])


def mixed_messages(aws: Aws) -> dict[str, str]:
    """Three clones, a delete and one message that can never succeed; returns message id -> kind."""
    sent = {send(aws, clone_action(name=f"matrix {n}")): "clone" for n in range(3)}
    sent[send(aws, delete_action())] = "delete"
    sent[send(aws, "not json")] = "invalid"
    return sent


def assert_conservation(
    aws: Aws, emulator: DatadogEmulator, poller: Poller, sent: dict[str, str]
) -> dict[str, set[str]]:
    where = account(aws, poller, set(sent))
    for message_id, kind in sent.items():
        if kind == "clone":
            name = json.loads(poller.deliveries[message_id].body)["name"]
            assert len(emulator.datasets_named(name)) <= 1, f"{name} cloned twice"
    return {"done": where.done, "by_function": where.by_function, "by_redrive": where.by_redrive}


def assert_all_done_but_the_invalid_one(outcome: dict[str, set[str]], sent: dict[str, str]) -> None:
    assert outcome["by_function"] == {m for m, k in sent.items() if k == "invalid"}
    assert outcome["done"] == {m for m, k in sent.items() if k != "invalid"}
    assert outcome["by_redrive"] == set()


class FakeAws:
    """Answers every AWS JSON-protocol call with one error, as a throttled or denying service would."""

    def __init__(self, error_type: str, status: int = 400) -> None:
        payload = json.dumps({"__type": error_type, "message": "fault injected by the test"}).encode()

        class Handler(LocalHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("x-amzn-query-error", f"{error_type.split('#')[-1]};Sender")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = LocalServer("fake-aws", Handler).start()
        self.url = self.server.url

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def fake_aws() -> Iterator[list[FakeAws]]:
    started: list[FakeAws] = []
    yield started
    for fake in started:
        fake.stop()


def break_service(monkeypatch: pytest.MonkeyPatch, fake_aws: list[FakeAws], service: str, error: str) -> None:
    fake = FakeAws(error)
    fake_aws.append(fake)
    monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", fake.url)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    handler.processor.cache_clear()


def heal_service(monkeypatch: pytest.MonkeyPatch, service: str) -> None:
    monkeypatch.delenv(f"AWS_ENDPOINT_URL_{service}")
    handler.processor.cache_clear()


# --- Datadog ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_datadog_server_errors(status: int, aws: Aws, emulator: DatadogEmulator, poller: Poller) -> None:
    emulator.inject(Fault(status=status, times=3))
    sent = mixed_messages(aws)
    assert poller.run_until_empty(timeout_seconds=30)
    assert_all_done_but_the_invalid_one(assert_conservation(aws, emulator, poller, sent), sent)


def test_datadog_refusing_connections(
    aws: Aws, emulator: DatadogEmulator, poller: Poller, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setenv("DD_API_URL", f"http://127.0.0.1:{closed_port}")
    handler.processor.cache_clear()
    sent = mixed_messages(aws)
    poller.poll_once()
    assert emulator.requests == []
    monkeypatch.setenv("DD_API_URL", emulator.url)  # Datadog is back
    handler.processor.cache_clear()
    assert poller.run_until_empty(timeout_seconds=30)
    assert_all_done_but_the_invalid_one(assert_conservation(aws, emulator, poller, sent), sent)


def test_datadog_resetting_connections_mid_response(aws: Aws, emulator: DatadogEmulator, poller: Poller) -> None:
    emulator.inject(Fault(drop=True, times=3))
    sent = mixed_messages(aws)
    assert poller.run_until_empty(timeout_seconds=30)
    assert_all_done_but_the_invalid_one(assert_conservation(aws, emulator, poller, sent), sent)


def test_datadog_answering_after_the_read_timeout(aws: Aws, emulator: DatadogEmulator, poller: Poller) -> None:
    emulator.inject(Fault(delay_seconds=2.5, times=2))  # the change happens; the answer is lost
    sent = mixed_messages(aws)
    assert poller.run_until_empty(timeout_seconds=40)
    assert_all_done_but_the_invalid_one(assert_conservation(aws, emulator, poller, sent), sent)


@pytest.mark.parametrize("reset", ["1", None], ids=["with-reset", "without-reset"])
def test_datadog_throttling(reset: str | None, aws: Aws, emulator: DatadogEmulator, poller: Poller) -> None:
    headers = {"X-RateLimit-Reset": reset} if reset else {}
    emulator.inject(Fault(status=429, times=4, headers=headers, rate_limit_headers=reset is not None))
    sent = mixed_messages(aws)
    assert poller.run_until_empty(timeout_seconds=40)
    assert_all_done_but_the_invalid_one(assert_conservation(aws, emulator, poller, sent), sent)


def test_keys_rotated_in_datadog_and_the_secret(aws: Aws, emulator: DatadogEmulator, poller: Poller) -> None:
    handler.lambda_handler({"Records": []}, LambdaContext())  # a warm function, keys cached
    emulator.rotate_keys("next-api-key", "next-app-key")
    aws.secrets.put_secret_value(
        SecretId=SECRET_ID, SecretString=json.dumps({"api_key": "next-api-key", "app_key": "next-app-key"})
    )
    sent = mixed_messages(aws)
    assert poller.run_until_empty(timeout_seconds=30)
    assert_all_done_but_the_invalid_one(assert_conservation(aws, emulator, poller, sent), sent)


def test_keys_refused_for_good(aws: Aws, emulator: DatadogEmulator, poller: Poller) -> None:
    emulator.rotate_keys("keys-nobody-has", "keys-nobody-has")
    sent = mixed_messages(aws)
    assert poller.run_until_empty(timeout_seconds=40)
    outcome = assert_conservation(aws, emulator, poller, sent)
    assert outcome["by_function"] == set(sent)  # the others on their last receive, with the reason
    assert outcome["by_redrive"] == set()
    refused = [d for d in aws.dead_letters() if d["attributes"]["error_class"] == "auth"]
    assert len(refused) == len(sent) - 1
    assert all("maxReceiveCount" in d["attributes"]["retries_exhausted"] for d in refused)
    assert emulator.datasets_named("matrix 0") == []


# --- AWS -----------------------------------------------------------------------------------------


def test_secrets_manager_throttling(
    aws: Aws, emulator: DatadogEmulator, poller: Poller, monkeypatch: pytest.MonkeyPatch, fake_aws: list[FakeAws]
) -> None:
    break_service(monkeypatch, fake_aws, "SECRETS_MANAGER", "ThrottlingException")
    sent = mixed_messages(aws)
    poller.poll_once()
    assert emulator.requests == []
    heal_service(monkeypatch, "SECRETS_MANAGER")
    assert poller.run_until_empty(timeout_seconds=30)
    assert_all_done_but_the_invalid_one(assert_conservation(aws, emulator, poller, sent), sent)


@pytest.mark.parametrize("breakage", ["deleted", "not-json"])
def test_a_broken_secret_retries_until_fixed(
    breakage: str, aws: Aws, emulator: DatadogEmulator, poller: Poller
) -> None:
    if breakage == "deleted":
        aws.secrets.delete_secret(SecretId=SECRET_ID, ForceDeleteWithoutRecovery=True)
    else:
        aws.secrets.put_secret_value(SecretId=SECRET_ID, SecretString="api_key=oops")
    sent = mixed_messages(aws)
    poller.poll_once()
    assert emulator.requests == []
    assert {m for m, d in poller.deliveries.items() if d.deleted} == {m for m, k in sent.items() if k == "invalid"}
    from local.stack import API_KEY, APP_KEY

    secret = json.dumps({"api_key": API_KEY, "app_key": APP_KEY})
    if breakage == "deleted":
        aws.secrets.create_secret(Name=SECRET_ID, SecretString=secret)
    else:
        aws.secrets.put_secret_value(SecretId=SECRET_ID, SecretString=secret)
    assert poller.run_until_empty(timeout_seconds=30)
    assert_all_done_but_the_invalid_one(assert_conservation(aws, emulator, poller, sent), sent)


def test_dynamodb_throttling(
    aws: Aws, emulator: DatadogEmulator, poller: Poller, monkeypatch: pytest.MonkeyPatch, fake_aws: list[FakeAws]
) -> None:
    break_service(monkeypatch, fake_aws, "DYNAMODB", "ProvisionedThroughputExceededException")
    sent = mixed_messages(aws)
    poller.poll_once()
    assert emulator.calls("POST", "/clone") == [], "no action without its idempotency record"
    heal_service(monkeypatch, "DYNAMODB")
    assert poller.run_until_empty(timeout_seconds=30)
    assert_all_done_but_the_invalid_one(assert_conservation(aws, emulator, poller, sent), sent)


def test_the_dlq_refusing_messages(
    aws: Aws, emulator: DatadogEmulator, poller: Poller, monkeypatch: pytest.MonkeyPatch, fake_aws: list[FakeAws]
) -> None:
    break_service(monkeypatch, fake_aws, "SQS", "com.amazon.coral.service#AccessDeniedException")
    sent = mixed_messages(aws)
    poller.poll_once()
    invalid = next(m for m, k in sent.items() if k == "invalid")
    assert not poller.deliveries[invalid].deleted, "kept in its queue while the DLQ refuses it"
    heal_service(monkeypatch, "SQS")
    assert poller.run_until_empty(timeout_seconds=30)
    assert_all_done_but_the_invalid_one(assert_conservation(aws, emulator, poller, sent), sent)


# --- Lambda ----------------------------------------------------------------------------------------


def test_running_out_of_time_mid_batch(
    aws: Aws, emulator: DatadogEmulator, poller: Poller, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_WORKERS", "1")
    monkeypatch.setenv("MIN_REMAINING_TIME_MS", "2000")
    handler.processor.cache_clear()
    emulator.latency_seconds = 0.3
    sent = mixed_messages(aws)
    short = Poller(aws.sqs, aws.queue_url, aws.queue_arn, in_process(handler.lambda_handler, 3), batch_size=10)
    short.poll_once()
    responses = {m: d.responses[0] for m, d in short.deliveries.items()}
    assert "retry" in responses.values(), "some records found too little time left"
    assert "done" in responses.values(), "the first records did run"
    poller.deliveries.update(short.deliveries)
    assert poller.run_until_empty(timeout_seconds=30)
    assert_all_done_but_the_invalid_one(assert_conservation(aws, emulator, poller, sent), sent)


def test_a_batch_where_every_record_fails_is_returned_not_raised(
    aws: Aws, emulator: DatadogEmulator, poller: Poller
) -> None:
    """All records in batchItemFailures, no exception: with ReportBatchItemFailures on, a function error
    would not make Lambda poll more slowly (AWS: "Lambda doesn't scale down message polling when function
    invocations fail"), it would only hide which records failed. The back-off is per message instead."""
    emulator.inject(Fault(status=503, times=4))
    sent = {send(aws, clone_action(name=f"all fail {n}")): "clone" for n in range(4)}
    poller.poll_once()
    assert all(d.responses == ["retry"] for d in poller.deliveries.values())
    assert poller.run_until_empty(timeout_seconds=30)
    outcome = assert_conservation(aws, emulator, poller, sent)
    assert outcome["done"] == set(sent)
