"""The llmobs-actions command line, end to end on the local stack."""

from __future__ import annotations

import io
import json
import shlex
from datetime import UTC, datetime
from pathlib import Path

import pytest

from llmobs_actions.cli import help_examples, main
from local.datadog_emulator import DatadogEmulator
from local.poller import Poller
from local.stack import LocalAws
from local.strict_aws import AwsFault
from tests.conftest import DATASET_ID, EXPERIMENT_IDS, PROJECT_ID, ROOT, Aws, delete_action


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


def dead_letter(aws: Aws, body: str, error_class: str | None, failed_at: str = "2026-12-01T03:00:00+00:00") -> None:
    """A message in the DLQ as the function leaves it (error_class None: as SQS's redrive leaves it)."""
    values = {
        "error_class": error_class,
        "error_message": f"{error_class} reason",
        "failed_at": failed_at,
        "source_message_id": f"first-{body[:20]}",
    }
    attributes = {k: {"DataType": "String", "StringValue": v} for k, v in values.items()} if error_class else {}
    aws.sqs.send_message(QueueUrl=aws.dlq_url, MessageBody=body, MessageAttributes=attributes)


def bodies_in(aws: Aws, queue_url: str) -> list[str]:
    found: list[str] = []
    while messages := aws.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=30).get(
        "Messages", []
    ):
        found += [m["Body"] for m in messages]
    return sorted(found)


def test_dlq_list_reads_everything_though_short_polls_answer_empty(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN three dead letters, and SQS's short polls answering nothing at first (as they may)
    for n, error_class in enumerate(["invalid", "transient", None]):
        dead_letter(aws, json.dumps(delete_action(experiment_ids=[f"e{n}"])), error_class)
    assert aws.front is not None
    aws.front.empty_short_polls = 3

    # WHEN an operator lists them, as text and as JSON
    code, out, _ = run(capsys, "dlq", "list", "--dlq-url", aws.dlq_url)
    json_code, json_out, _ = run(capsys, "dlq", "list", "--dlq-url", aws.dlq_url, "--json")

    # THEN all three are there, counted by class and by origin, and still in the queue
    assert (code, json_code) == (0, 0)
    assert "3 message(s)" in out
    assert "by error_class: invalid 1, transient 1, redriven 1" in out
    assert "by origin: function 2, sqs 1" in out
    listed = json.loads(json_out)
    assert listed["count"] == 3
    assert listed["by_origin"] == {"function": 2, "sqs": 1}
    assert {m["error_class"] for m in listed["messages"]} == {"invalid", "transient", "redriven"}
    aws.front.empty_short_polls = 0
    assert len(aws.dead_letters()) == 3


def test_dlq_redrive_without_filters_runs_a_move_task_and_waits(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    for n in range(3):
        dead_letter(aws, json.dumps(delete_action(experiment_ids=[f"e{n}"])), "transient")
    code, out, _ = run(capsys, "dlq", "redrive", "--dlq-url", aws.dlq_url, "--queue-url", aws.queue_url, "--yes")
    assert code == 0
    assert "started message move task" in out
    assert "3/3 completed" in out
    assert aws.dead_letters() == []
    assert len(bodies_in(aws, aws.queue_url)) == 3


def test_dlq_redrive_filters_by_class_and_age_and_keeps_invalid_ones(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN old and recent transient failures, an auth failure and an invalid message
    dead_letter(aws, "old transient", "transient", failed_at="2026-11-01T00:00:00+00:00")
    dead_letter(aws, "recent transient", "transient", failed_at=datetime.now(UTC).isoformat(timespec="seconds"))
    dead_letter(aws, "auth", "auth", failed_at="2026-11-01T00:00:00+00:00")
    dead_letter(aws, "invalid", "invalid", failed_at="2026-11-01T00:00:00+00:00")
    redrive = ["dlq", "redrive", "--dlq-url", aws.dlq_url, "--queue-url", aws.queue_url]

    # WHEN a dry run, then the real redrive of transient failures older than a day, at most 20 a second
    code, out, _ = run(capsys, *redrive, "--error-class", "transient", "--older-than", "1d", "--dry-run")
    assert (code, "would move 1 of 4 message(s)" in out) == (0, True)
    assert bodies_in(aws, aws.queue_url) == []
    code, out, _ = run(
        capsys, *redrive, "--error-class", "transient", "--older-than", "1d", "--max-per-second", "20", "--yes"
    )

    # THEN exactly that one moved, its body unchanged; the rest stayed
    assert code == 0
    assert "moved 1 message(s)" in out
    assert bodies_in(aws, aws.queue_url) == ["old transient"]
    assert sorted(d["body"] for d in aws.dead_letters()) == ["auth", "invalid", "recent transient"]

    # ...and a redrive of everything still keeps the invalid one unless asked
    code, out, _ = run(capsys, *redrive, "--yes")
    assert "1 invalid kept" in out
    assert [d["body"] for d in aws.dead_letters()] == ["invalid"]
    assert run(capsys, *redrive, "--include-invalid", "--yes")[0] == 0
    assert aws.dead_letters() == []


def test_a_filtered_redrive_is_never_a_move_task_even_when_it_takes_everything(
    aws: Aws, local_aws: LocalAws, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a DLQ of transient failures only
    for n in range(2):
        dead_letter(aws, f"transient {n}", "transient")

    # WHEN the operator redrives the transient ones
    redrive = ["dlq", "redrive", "--dlq-url", aws.dlq_url, "--queue-url", aws.queue_url, "--yes"]
    code, out, _ = run(capsys, *redrive, "--error-class", "transient")

    # THEN they move one by one: a move task would also take what arrived after the read, whatever its class
    assert (code, "moved 2 message(s)" in out) == (0, True)
    assert local_aws.front.calls["AmazonSQS.StartMessageMoveTask"] == 0
    assert bodies_in(aws, aws.queue_url) == ["transient 0", "transient 1"]


@pytest.mark.parametrize(
    ("rate", "why"),
    [("0.5", "below SQS's least rate of one a second"), (None, "messages SQS moved, without their first message's id")],
)
def test_an_unfiltered_redrive_moves_one_by_one_what_a_move_task_cannot_keep(
    rate: str | None, why: str, aws: Aws, local_aws: LocalAws, capsys: pytest.CaptureFixture[str]
) -> None:
    dead_letter(aws, "one", "transient" if rate else None)
    redrive = ["dlq", "redrive", "--dlq-url", aws.dlq_url, "--queue-url", aws.queue_url, "--yes"]
    code, out, err = run(capsys, *redrive, *(["--max-per-second", rate] if rate else []))
    assert (code, err) == (0, ""), why
    assert "moved 1 message(s)" in out
    assert local_aws.front.calls["AmazonSQS.StartMessageMoveTask"] == 0
    assert bodies_in(aws, aws.queue_url) == ["one"]


def test_dlq_redrive_asks_first_and_moves_nothing_when_refused(
    aws: Aws, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dead_letter(aws, "waiting", "transient")
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    code, out, _ = run(capsys, "dlq", "redrive", "--dlq-url", aws.dlq_url, "--queue-url", aws.queue_url)
    assert code == 1
    assert "? [y/N]" in out
    assert "nothing moved" in out
    assert [d["body"] for d in aws.dead_letters()] == ["waiting"]


def test_a_move_task_already_running_is_one_line_not_a_traceback(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    for n in range(30):
        dead_letter(aws, f"slow {n}", "transient")
    redrive = ["dlq", "redrive", "--dlq-url", aws.dlq_url, "--queue-url", aws.queue_url, "--yes"]
    assert run(capsys, *redrive, "--max-per-second", "1", "--no-wait")[0] == 0
    code, _, err = run(capsys, *redrive)
    assert code == 2
    assert err.count("\n") == 1
    assert "SQS UnsupportedOperation (StartMessageMoveTask): a move task may already be running" in err


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (
            "AccessDenied",
            "SQS AccessDenied (GetQueueAttributes): your credentials may not do this: ask for sqs:GetQueueAttributes",
        ),
        ("ExpiredToken", "SQS ExpiredToken (GetQueueAttributes): your AWS credentials are expired or not valid"),
    ],
)
def test_aws_errors_are_one_line_saying_what_to_do(
    aws: Aws, capsys: pytest.CaptureFixture[str], code: str, expected: str
) -> None:
    assert aws.front is not None
    aws.front.inject(AwsFault(target="AmazonSQS.GetQueueAttributes", code=code, times=1))
    exit_code, out, err = run(capsys, "dlq", "list", "--dlq-url", aws.dlq_url)
    assert exit_code == 2
    assert err.strip().startswith(f"llmobs-actions: {expected}")
    assert "Traceback" not in out + err


def test_a_wrong_queue_url_is_one_line(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "dlq", "list", "--dlq-url", aws.dlq_url + "-typo")
    assert code == 2
    assert "no such queue here: check the URL and the region" in err


def test_source_and_detail_type_need_an_event_bus(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "send", "delete", "--experiment-id", "e1", "--queue-url", aws.queue_url, "--source", "x")
    assert code == 2
    assert "--source and --detail-type go with --event-bus" in err
    assert aws.sqs.receive_message(QueueUrl=aws.queue_url).get("Messages", []) == []


def test_validate_says_when_a_record_body_is_not_a_string(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    event = {"Records": [{"eventSource": "aws:sqs", "messageId": "m", "body": {"action": "clone_dataset"}}]}
    (tmp_path / "event.json").write_text(json.dumps(event))
    code, out, _ = run(capsys, "validate", str(tmp_path / "event.json"))
    assert code == 1
    assert "record 1: invalid: the record's body is not a string (dict)" in out


def test_invoking_the_same_file_twice_acts_twice(
    aws: Aws, emulator: DatadogEmulator, function_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(2):
        assert run(capsys, "invoke", str(ROOT / "events" / "sqs-clone-dataset.json"))[0] == 0
    assert len(emulator.calls("POST", "/clone")) == 2, "each run is a new delivery, not a duplicate"
    assert run(capsys, "invoke", str(ROOT / "events" / "sqs-clone-dataset.json"), "--keep-ids")[0] == 0
    assert run(capsys, "invoke", str(ROOT / "events" / "sqs-clone-dataset.json"), "--keep-ids")[0] == 0
    assert len(emulator.calls("POST", "/clone")) == 3, "the same ids again: the second is a duplicate"


def test_invoke_gives_the_handler_the_template_s_function_timeout(tmp_path: Path) -> None:
    from llmobs_actions.cli import template_timeout as _template_timeout

    assert _template_timeout(ROOT / "template.yaml") == 60
    (tmp_path / "template.yaml").write_text('Parameters:\n  FunctionTimeout:\n    Type: String\n    Default: "15"\n')
    assert _template_timeout(tmp_path / "template.yaml") == 15
    assert _template_timeout(tmp_path / "missing.yaml") is None


def test_every_help_example_runs(
    aws: Aws,
    emulator: DatadogEmulator,
    background_poller: Poller,  # for the example that waits for its outcome
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)  # the examples name files in events/
    values = {
        "$PROJECT": PROJECT_ID,
        "$DATASET": DATASET_ID,
        "$EXPERIMENT": EXPERIMENT_IDS[0],
        "$SNAPSHOT": emulator.add_dataset(PROJECT_ID, "golden-2026-10-01").id,
        "$QUEUE_URL": aws.queue_url,
        "$DLQ_URL": aws.dlq_url,
    }
    examples = help_examples()
    assert len(examples) >= 10
    for example in examples:
        for name, value in values.items():
            example = example.replace(name, value)
        argv = shlex.split(example)[1:]
        assert main(argv) == 0, example
        capsys.readouterr()


def test_invoke_runs_the_handler_on_an_event_file(
    aws: Aws, emulator: DatadogEmulator, function_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "invoke", str(ROOT / "events" / "sqs-delete-experiments.json"))
    assert code == 0
    [said, response] = [line for line in out.splitlines() if line.startswith(("done", "{"))][-2:]
    assert said.startswith("done")
    assert "deleted 2 experiment(s)" in said
    assert json.loads(response) == {"batchItemFailures": []}
    assert all(emulator.experiments[i].deleted_at for i in EXPERIMENT_IDS)


@pytest.mark.parametrize("ids", [[], ["--keep-ids"]], ids=["fresh ids", "the file's own ids and times"])
def test_invoke_retries_what_may_succeed_later_and_says_so_with_exit_1(
    ids: list[str],
    aws: Aws,
    function_env: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a Datadog that cannot be reached (a typo in DD_API_URL, a blip)
    monkeypatch.setenv("DD_API_URL", "http://127.0.0.1:1")
    # WHEN a clone's event file is invoked (its SentTimestamp, with --keep-ids, a year old)
    code, out, _ = run(capsys, "invoke", str(ROOT / "events" / "sqs-clone-dataset.json"), *ids)
    # THEN the record is retried, said so, exit 1: nothing reached the DLQ (a record older than its queue keeps
    # messages cannot have come from it, so the queue's retention does not end it)
    assert code == 1
    [said] = [line for line in out.splitlines() if line.startswith(("done", "retried", "dead-lettered"))]
    assert said.startswith("retried")
    assert "transient" in said
    assert aws.dead_letters() == []


def test_invoke_says_why_a_record_was_dead_lettered(
    aws: Aws, emulator: DatadogEmulator, function_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "invoke", str(ROOT / "events" / "sqs-dataset-not-found.json"))
    assert code == 1
    [said] = [line for line in out.splitlines() if line.startswith("dead-lettered")]
    assert "rejected" in said
    assert "404" in said


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
    assert main([*command, "--help"]) == 0  # argparse's exit, returned: the console script exits with it
    assert "usage: llmobs-actions" in capsys.readouterr().out


def test_send_builds_the_lifecycle_actions_and_refuses_a_prune_without_a_selector(
    aws: Aws, emulator: DatadogEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "send", "prune-datasets", "--project-name", "evals", "--queue-url", aws.queue_url)
    assert code == 2
    assert "give older_than_days or name_prefix" in err
    code, sent, _ = run(
        capsys,
        "send",
        "prune-datasets",
        "--project-name",
        "evals",
        "--name-prefix",
        "golden-",
        "--include-datasets-in-use",
        "--queue-url",
        aws.queue_url,
    )
    assert code == 0
    [message] = aws.sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10)["Messages"]
    assert message["MessageId"] == sent.strip()
    assert json.loads(message["Body"]) == {
        "action": "prune_datasets",
        "project_name": "evals",
        "name_prefix": "golden-",
        "include_datasets_in_use": True,
    }
    assert run(capsys, "validate", str(ROOT / "events" / "sqs-prune-datasets-dry-run.json"))[0] == 0
