"""Tracing as deployed: the function in its own process with Lambda's sampled trace header, its X-Ray
segments caught by a UDP listener standing in for the X-Ray daemon (AWS_XRAY_DAEMON_ADDRESS)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.datadog_emulator import DatadogEmulator
from local.poller import Poller
from local.runtime_api import LambdaRuntime
from tests.conftest import API_KEY, APP_KEY, Aws, clone_action


@pytest.fixture
def xray_daemon() -> Iterator[socket.socket]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(0.5)
    yield listener
    listener.close()


def segments(listener: socket.socket, quiet_seconds: float = 1.0) -> list[dict[str, Any]]:
    """What the SDK sent: each datagram is a header line, then one segment or subsegment document."""
    found: list[dict[str, Any]] = []
    last = time.monotonic()
    while time.monotonic() - last < quiet_seconds:
        try:
            packet = listener.recv(65_536).decode()
        except TimeoutError:
            continue
        last = time.monotonic()
        header, _, document = packet.partition("\n")
        assert json.loads(header) == {"format": "json", "version": 1}
        found.append(json.loads(document))
    return found


def all_documents(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every (sub)segment, nested ones included."""
    found: list[dict[str, Any]] = []
    pending = list(documents)
    while pending:
        document = pending.pop()
        found.append(document)
        pending += document.get("subsegments", [])
    return found


def names(documents: list[dict[str, Any]]) -> set[str]:
    return {str(document.get("name")) for document in all_documents(documents)}


def test_a_sampled_invocation_traces_its_aws_and_datadog_calls_and_no_key(
    aws: Aws, emulator: DatadogEmulator, function_env: None, xray_daemon: socket.socket, tmp_path: Path
) -> None:
    host, port = xray_daemon.getsockname()
    environment = {"POWERTOOLS_TRACE_DISABLED": "false", "AWS_XRAY_DAEMON_ADDRESS": f"{host}:{port}"}
    with (tmp_path / "function.log").open("w") as log, LambdaRuntime(environment, 30, log=log, sampled=True) as runtime:
        poller = Poller(aws.sqs, aws.queue_url, aws.queue_arn, runtime.invoke, aws.values.batch_size)
        aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=json.dumps(clone_action(name="traced")))
        assert poller.run_until_empty(timeout_seconds=30)
        sent = segments(xray_daemon)

    traced = names(sent)
    assert "## lambda_handler" in traced  # Powertools' handler subsegment
    # every AWS call the first message needs (X-Ray's botocore patch names them by service) ...
    assert {"secretsmanager", "dynamodb", "events"} <= traced, traced
    # ... and the Datadog call, a remote subsegment named after the host, with its status
    [datadog] = [d for d in all_documents(sent) if d.get("namespace") == "remote"]
    assert datadog["name"] == "127.0.0.1"
    assert datadog["annotations"] == {"operation": "clone_dataset"}
    assert datadog["http"]["response"] == {"status": 200}
    assert datadog["http"]["request"]["method"] == "POST"
    text = json.dumps(sent)
    assert API_KEY not in text, "a Datadog key in a trace"
    assert APP_KEY not in text, "a Datadog key in a trace"
    assert len(emulator.datasets_named("traced")) == 1
