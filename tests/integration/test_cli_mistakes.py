"""The command line without surprises: a mistake is said in one line and exit 2, never a traceback, never
swallowed; every flag has help; every --help ends with examples."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from llmobs_actions import __version__
from llmobs_actions.cli import _parser, main
from local.servers import LocalHandler, LocalServer
from tests.conftest import ROOT, Aws

COMMANDS = [
    ["send", "clone", "--project-id", "p", "--dataset-id", "d", "--name", "n", "--queue-url", "http://q/1/q"],
    ["send", "delete", "--experiment-id", "e", "--event-bus", "default"],
    ["dlq", "list", "--dlq-url", "http://q/1/dlq"],
    ["dlq", "redrive", "--dlq-url", "http://q/1/dlq", "--queue-url", "http://q/1/q", "--yes"],
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_malformed_endpoint_is_one_line_for_every_command(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {"AWS_ENDPOINT_URL": "localhost:4566", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    code, _, err = run(capsys, *command)
    assert code == 2
    assert err.count("\n") == 1
    assert "AWS_ENDPOINT_URL=localhost:4566" in err
    assert "http://localhost:4566" in err


def test_invoke_with_a_malformed_endpoint_says_so_without_a_traceback(
    aws: Aws, function_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "localhost:4566")
    code, out, err = run(capsys, "invoke", str(ROOT / "events" / "sqs-clone-dataset.json"))
    assert code == 1
    # stderr holds the function's JSON log lines (their exception fields name the error); nothing else
    assert all(line.startswith("{") for line in err.splitlines()), err
    [said] = [line for line in out.splitlines() if line.startswith(("done", "retried", "dead-lettered"))]
    assert "Invalid endpoint" in said


def test_ctrl_c_at_the_redrive_prompt_is_no_traceback(aws: Aws, tmp_path: object) -> None:
    # GIVEN the redrive asking whether to move a dead letter
    aws.sqs.send_message(QueueUrl=aws.dlq_url, MessageBody="waiting")
    environment = os.environ | {"PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
    command = [sys.executable, "-m", "llmobs_actions.cli", "dlq", "redrive", "--dlq-url", aws.dlq_url]
    with subprocess.Popen(  # noqa: S603 (this interpreter, our command)
        [*command, "--queue-url", aws.queue_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
        text=True,
    ) as redrive:
        assert redrive.stdout is not None
        # WHEN the operator presses Ctrl-C there
        asked = ""
        deadline = time.monotonic() + 30
        while "[y/N]" not in asked and time.monotonic() < deadline:
            asked += redrive.stdout.read(1)
        redrive.send_signal(signal.SIGINT)
        _, err = redrive.communicate(timeout=30)
    # THEN one line, exit 130, and the message still waits in the DLQ
    assert "[y/N]" in asked
    assert (redrive.returncode, err.strip()) == (130, "llmobs-actions: interrupted")
    assert [letter["body"] for letter in aws.dead_letters()] == ["waiting"]


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["dlq", "redrive", "--error-class", "transiant"], "'transiant' is no error class; the classes: invalid"),
        (["invoke", "events/sqs-clone-dataset.json", "--timeout", "0"], "must be more than 0"),
        (
            ["send", "clone", "--projcet-id", "p", "--dataset-id", "d", "--name", "n"],
            "unrecognized arguments: --projcet-id",
        ),
        (["dlq", "redrive", "--max-per-second", "-1"], "must be more than 0"),
    ],
)
def test_a_mistake_is_a_usage_error_that_names_it(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert said in capsys.readouterr().err


def test_an_aws_code_is_taken_as_an_error_class(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    redrive = ["dlq", "redrive", "--dlq-url", aws.dlq_url, "--queue-url", aws.queue_url, "--dry-run"]
    assert run(capsys, *redrive, "--error-class", "SDK_CLIENT_ERROR", "--error-class", "RetriesExhausted")[0] == 0


def test_dlq_commands_refuse_a_queue_that_is_no_dead_letter_queue(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody="a message the function must still see")
    code, _, err = run(capsys, "dlq", "list", "--dlq-url", aws.queue_url)
    assert code == 2
    assert "is no dead-letter queue" in err
    assert aws.sqs.receive_message(QueueUrl=aws.queue_url).get("Messages"), "nothing was hidden"


def test_every_flag_has_help_and_every_help_ends_with_examples() -> None:
    pending, seen = [_parser()], []
    while pending:
        parser = pending.pop()
        seen.append(parser.prog)
        assert (parser.epilog or "").startswith("examples:"), parser.prog
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                pending += list(dict.fromkeys(action.choices.values()))
            else:
                assert action.help, f"{parser.prog} {'/'.join(action.option_strings) or action.dest}"
    assert {"llmobs-actions", "llmobs-actions send", "llmobs-actions dlq"} <= set(seen)


def test_the_version_is_said(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"llmobs-actions {__version__}"


class _NeverAnswers(LocalHandler):
    """A service that takes every request and never answers it: a command waits there until interrupted."""

    def do_POST(self) -> None:
        self.server.asked.set()  # type: ignore[attr-defined]
        self.server.stopping.wait()

    do_GET = do_POST


@pytest.mark.parametrize(
    "command",
    [*COMMANDS, ["invoke", str(ROOT / "events" / "sqs-clone-dataset.json")]],
    ids=lambda c: " ".join(c[:2]),
)
def test_ctrl_c_while_a_command_waits_on_aws_is_one_line_for_every_command(command: list[str]) -> None:
    # GIVEN every AWS service a command may call answering nothing
    server = LocalServer("never-answers", _NeverAnswers)
    server.asked = threading.Event()  # type: ignore[attr-defined]
    server.start()
    environment = os.environ | {
        "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}",
        "AWS_ENDPOINT_URL": server.url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "DD_SECRET_ID": "llmobs-actions/datadog",
        "IDEMPOTENCY_TABLE": "idempotency",
        "DEAD_LETTER_QUEUE_URL": "http://q/1/dlq",
    }
    try:
        with subprocess.Popen(  # noqa: S603 (this interpreter, our command)
            [sys.executable, "-m", "llmobs_actions.cli", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
            text=True,
        ) as waiting:
            # WHEN the user presses Ctrl-C while the command waits on its first call
            assert server.asked.wait(30), "the command never called AWS"  # type: ignore[attr-defined]
            waiting.send_signal(signal.SIGINT)
            _, err = waiting.communicate(timeout=30)
    finally:
        server.stop()
    # THEN one line and exit 130, no traceback
    assert (waiting.returncode, err.strip()) == (130, "llmobs-actions: interrupted")
