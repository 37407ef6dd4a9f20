"""`llmobs-actions send … --wait`: the outcome of one message, read from its result event, on the local stack.

A background poller plays Lambda's event source mapping; the strict front holds each new rule back for
a moment, as EventBridge may ("might not immediately start matching"), so a wait that did not first
prove its rule live would miss fast outcomes.
"""

from __future__ import annotations

import json

import boto3
import pytest

from llmobs_actions.cli import main
from llmobs_actions.result_watch import PROBE_SOURCE, ResultWatch
from local.datadog_emulator import DatadogEmulator
from local.poller import Poller
from local.stack import LocalAws
from tests.conftest import DATASET_ID, EXPERIMENT_IDS, PROJECT_ID, Aws

WAIT_PREFIX = "llmobs-actions-wait-"


@pytest.fixture
def settling_rules(local_aws: LocalAws) -> None:
    local_aws.front.rule_settle_seconds = 1.5


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """The exit code and what the command printed (the in-process function's log and metric lines apart)."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, "".join(line for line in captured.out.splitlines(True) if not _functions(line)), captured.err


def _functions(line: str) -> bool:
    try:
        document = json.loads(line)
    except ValueError:
        return False
    return isinstance(document, dict) and ("_aws" in document or "level" in document)


def clone_args(aws: Aws, *extra: str, dataset_id: str = DATASET_ID) -> list[str]:
    return [
        "send", "clone", "--project-id", PROJECT_ID, "--dataset-id", dataset_id, "--queue-url", aws.queue_url, *extra,
    ]  # fmt: skip


def nothing_left_behind() -> None:
    rules = boto3.client("events").list_rules(NamePrefix=WAIT_PREFIX)["Rules"]
    queues = boto3.client("sqs").list_queues(QueueNamePrefix=WAIT_PREFIX).get("QueueUrls", [])
    assert (rules, queues) == ([], [])


def test_wait_prints_the_new_dataset_and_exits_0(
    aws: Aws,
    emulator: DatadogEmulator,
    settling_rules: None,
    background_poller: Poller,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, *clone_args(aws, "--name", "ci-snapshot", "--wait", "--timeout", "60"))

    [created] = emulator.datasets_named("ci-snapshot")
    assert code == 0, err
    assert out == f"done: new dataset {created.id} named 'ci-snapshot' (version 0)\n"
    assert "waiting for its outcome" in err  # one progress line on stderr, not a terminal here
    nothing_left_behind()


def test_wait_json_gives_a_script_the_new_id(
    aws: Aws, emulator: DatadogEmulator, background_poller: Poller, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, *clone_args(aws, "--name", "for jq", "--wait", "--json", "--correlation-id", "ci-7"))

    detail = json.loads(out)
    [created] = emulator.datasets_named("for jq")
    assert code == 0
    assert (detail["result"]["new_dataset_id"], detail["correlation_id"]) == (created.id, "ci-7")


def test_a_dry_run_announced_at_once_is_not_missed_while_the_rule_settles(
    aws: Aws,
    emulator: DatadogEmulator,
    settling_rules: None,
    background_poller: Poller,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["send", "delete", "--queue-url", aws.queue_url, "--dry-run", "--wait", "--timeout", "60"]
    code, out, err = run(capsys, *args, *(a for i in EXPERIMENT_IDS for a in ("--experiment-id", i)))

    assert code == 0, err
    assert out.startswith("done (dry run): delete_experiments: ")
    assert f"to delete {len(EXPERIMENT_IDS)}" in out
    assert emulator.calls("POST", "/experiments/delete") == []


def test_wait_through_eventbridge_matches_by_correlation_id(
    aws: Aws, emulator: DatadogEmulator, background_poller: Poller, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["send", "delete", "--event-bus", "default", "--wait", "--timeout", "60"]
    code, out, err = run(capsys, *args, *(a for i in EXPERIMENT_IDS for a in ("--experiment-id", i)))

    assert code == 0, err
    assert out == f"done: delete_experiments: deleted {len(EXPERIMENT_IDS)}, already gone 0\n"


def test_a_dead_lettered_message_prints_its_reason_and_exits_1(
    aws: Aws, emulator: DatadogEmulator, background_poller: Poller, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, *clone_args(aws, "--name", "n", "--wait", dataset_id="no-such-dataset"))

    assert code == 1
    first, second = out.splitlines()
    assert first.startswith("failed (rejected, HTTP 404): clone_dataset: Datadog answered 404")
    assert second == "the message is in the dead-letter queue: llmobs-actions dlq list"
    [letter] = aws.dead_letters()
    assert letter["attributes"]["error_class"] == "rejected"
    nothing_left_behind()


def test_no_outcome_in_time_exits_2_and_cleans_up(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    # no poller: the message waits in its queue
    code, out, err = run(capsys, *clone_args(aws, "--name", "n", "--wait", "--timeout", "2"))

    assert (code, out) == (2, "")
    assert "no outcome for" in err
    assert "within 2 s" in err
    assert len(aws.sqs.receive_message(QueueUrl=aws.queue_url).get("Messages", [])) == 1  # sent all the same
    nothing_left_behind()


@pytest.mark.parametrize(
    ("extra", "complaint"),
    [
        (["--wait", "--timeout", "0"], "--timeout: '0': must be more than 0"),
        (["--json"], "go with --wait"),
        (["--result-bus", "other"], "go with --wait"),
    ],
)
def test_wait_usage_errors_exit_2_and_send_nothing(
    aws: Aws, capsys: pytest.CaptureFixture[str], extra: list[str], complaint: str
) -> None:
    code, _, err = run(capsys, *clone_args(aws, "--name", "n", *extra))

    assert code == 2
    assert complaint in err
    assert aws.sqs.receive_message(QueueUrl=aws.queue_url).get("Messages", []) == []


def test_the_watch_queue_takes_messages_only_from_its_own_rule(aws: Aws) -> None:
    events = boto3.client("events")
    with ResultWatch(events, aws.sqs, "default", "corr-1") as watch:
        policy = json.loads(
            aws.sqs.get_queue_attributes(QueueUrl=watch.queue_url, AttributeNames=["Policy"])["Attributes"]["Policy"]
        )
        [statement] = policy["Statement"]
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": watch.rule_arn}}
        [rule] = events.list_rules(NamePrefix=WAIT_PREFIX)["Rules"]
        pattern = json.loads(rule["EventPattern"])
        assert pattern["detail"] == {"correlation_id": ["corr-1"]}
        assert PROBE_SOURCE in pattern["source"]
    nothing_left_behind()


def test_a_prune_dry_run_names_what_it_would_delete(
    aws: Aws, emulator: DatadogEmulator, background_poller: Poller, capsys: pytest.CaptureFixture[str]
) -> None:
    made = [emulator.add_dataset(PROJECT_ID, f"old-snapshot-{n:02d}", records=1).id for n in range(23)]
    args = ["send", "prune-datasets", "--project-id", PROJECT_ID, "--name-prefix", "old-snapshot-", "--dry-run"]
    code, out, err = run(capsys, *args, "--queue-url", aws.queue_url, "--wait", "--timeout", "60")

    assert code == 0, err
    summary, spared, heading, *named = out.splitlines()
    assert "not listed" not in summary
    assert summary.startswith("done (dry run): prune_datasets: matching 23, to delete 23")
    assert spared == "  spared: newest 0, protected 0, unknown age 0, in use 0"
    assert heading == "  would delete:"
    assert len(named) == 21
    assert named[-1] == "    and 3 more"
    assert {line.split()[0] for line in named[:20]} <= set(made)
    assert all(line.split()[1].startswith("'old-snapshot-") for line in named[:20])
    assert emulator.calls("POST", "/datasets/delete") == []
