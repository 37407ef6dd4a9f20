"""The llmobs-actions command line, end to end on the local stack."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from llmobs_actions.cli import main
from local.datadog_emulator import DatadogEmulator
from local.poller import Poller
from tests.conftest import DATASET_ID, EXPERIMENT_IDS, PROJECT_ID, ROOT, Aws


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_send_clone_to_the_queue(
    aws: Aws, emulator: DatadogEmulator, poller: Poller, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys,
        "send",
        "clone",
        "--project-id",
        PROJECT_ID,
        "--dataset-id",
        DATASET_ID,
        "--name",
        "from the cli {date}",
        "--queue-url",
        aws.queue_url,
    )
    assert code == 0
    message_id = out.strip()
    assert poller.run_until_empty(timeout_seconds=20)
    assert poller.deliveries[message_id].deleted
    assert any(d.name.startswith("from the cli 20") for d in emulator.datasets.values())


def test_send_delete_through_eventbridge(
    aws: Aws, poller: Poller, emulator: DatadogEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["send", "delete", "--event-bus", "default"]
    for experiment_id in EXPERIMENT_IDS:
        args += ["--experiment-id", experiment_id]
    code, out, _ = run(capsys, *args)
    assert code == 0
    assert out.strip()  # the EventBridge event id
    assert poller.run_until_empty(timeout_seconds=20)
    assert all(emulator.experiments[i].deleted_at for i in EXPERIMENT_IDS)


def test_send_refuses_an_invalid_action_and_sends_nothing(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LLMOBS_ACTIONS_QUEUE_URL", aws.queue_url)
    code, _, err = run(capsys, "send", "clone", "--project-id", "../x", "--dataset-id", DATASET_ID, "--name", "n")
    assert code == 2
    assert "not sent, the action is invalid: clone_dataset.project_id: String should match pattern" in err
    assert aws.sqs.receive_message(QueueUrl=aws.queue_url).get("Messages", []) == []


def test_validate_prints_the_exact_error_of_each_record(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", str(ROOT / "events" / "sqs-mixed-batch.json"))
    assert code == 1
    lines = out.splitlines()
    assert lines[0].endswith("record 1: valid clone_dataset")
    assert "record 2: invalid: body is not JSON" in lines[1]
    assert "does not match any of the expected tags" in lines[2]
    assert "experiment_ids.0: String should match pattern" in lines[3]
    code, out, _ = run(capsys, "validate", str(ROOT / "events" / "schedule-nightly-snapshot.json"))
    assert (code, out.strip().endswith("valid clone_dataset")) == (0, True)


def test_dlq_list_shows_reasons_and_keeps_the_messages(
    aws: Aws, poller: Poller, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody="{oops")
    assert poller.run_until_empty(timeout_seconds=20)
    monkeypatch.setenv("LLMOBS_ACTIONS_DLQ_URL", aws.dlq_url)
    code, out, _ = run(capsys, "dlq", "list")
    assert code == 0
    assert "invalid" in out
    assert "body is not JSON" in out
    assert "1 message(s)" in out
    assert len(aws.dead_letters()) == 1  # still there


class FakeSqs:
    """moto has no StartMessageMoveTask: this answers the three calls `dlq redrive` makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        polls = iter([("RUNNING", 1), ("RUNNING", 2), ("COMPLETED", 3)])
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                target = self.headers["X-Amz-Target"].split(".")[-1]
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                fake.calls.append((target, body))
                if target == "GetQueueAttributes":
                    name = body["QueueUrl"].rsplit("/", 1)[-1]
                    answer: dict[str, Any] = {"Attributes": {"QueueArn": f"arn:aws:sqs:us-east-1:123456789012:{name}"}}
                elif target == "StartMessageMoveTask":
                    answer = {"TaskHandle": "task-1"}
                else:
                    status, moved = next(polls)
                    answer = {
                        "Results": [
                            {
                                "Status": status,
                                "ApproximateNumberOfMessagesMoved": moved,
                                "ApproximateNumberOfMessagesToMove": 3,
                            }
                        ]
                    }
                payload = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def fake_sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSqs]:
    fake = FakeSqs()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", fake.url)
    monkeypatch.setattr("llmobs_actions.cli.time.sleep", lambda seconds: None)
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def test_dlq_redrive_starts_a_move_task_back_to_the_queue_and_waits(
    aws: Aws, fake_sqs: FakeSqs, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys,
        "dlq",
        "redrive",
        "--dlq-url",
        "http://sqs/123456789012/actions-dlq",
        "--queue-url",
        "http://sqs/123456789012/actions",
    )
    assert code == 0
    [start] = [body for target, body in fake_sqs.calls if target == "StartMessageMoveTask"]
    assert start == {
        "SourceArn": "arn:aws:sqs:us-east-1:123456789012:actions-dlq",
        "DestinationArn": "arn:aws:sqs:us-east-1:123456789012:actions",
    }
    assert "3/3 completed" in out


def test_invoke_runs_the_handler_on_an_event_file(
    aws: Aws, emulator: DatadogEmulator, function_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "invoke", str(ROOT / "events" / "sqs-delete-experiments.json"))
    assert code == 0
    assert json.loads(out[out.index("{\n") :]) == {"batchItemFailures": []}
    assert all(emulator.experiments[i].deleted_at for i in EXPERIMENT_IDS)


def test_missing_aws_configuration_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    code, _, err = run(capsys, "send", "delete", "--experiment-id", "e1", "--queue-url", "http://q")
    assert code == 2
    assert "no AWS region: set AWS_REGION" in err


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["send"],
        ["send", "clone"],
        ["send", "delete"],
        ["send", "prune"],
        ["validate"],
        ["dlq"],
        ["dlq", "list"],
        ["dlq", "redrive"],
        ["invoke"],
    ],
)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    assert "usage: llmobs-actions" in capsys.readouterr().out
