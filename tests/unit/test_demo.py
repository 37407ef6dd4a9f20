"""`make demo` stays true: the scenario demo, the events/ runner and the one-file mode all exit 0."""

from __future__ import annotations

import pytest

from local import demo
from local.seeded_ids import DATASET_ID, PROJECT_ID
from tests.doc_blocks import ROOT, blocks, contains_in_order


def test_the_demo_reaches_every_expected_outcome(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main([]) == 0
    report = capsys.readouterr().out
    assert report.count("\nok  ") == 13
    assert "13 result events" in report  # one per message, each the outcome it announced
    # the lifecycle: the protected snapshot and the one in use survive the retention, and it says why
    assert "spared golden-snapshot-33d, golden-snapshot-35d" in report
    assert "spared={'newest': 0, 'protected': 1, 'unknown_age': 0, 'in_use': 1}" in " ".join(report.split())
    assert "left: nightly-eval-a, nightly-eval-a, nightly-eval-b, nightly-eval-b" in report
    folded = " ".join(report.split())  # as read, whatever the folding of long lines
    assert f"resolved={{'project_id': '{PROJECT_ID}', 'dataset_id': '{DATASET_ID}'}}" in folded
    assert "task SUCCEEDED" in report  # the state machine's task was completed with the new dataset
    # the nightly run Scheduler delivered twice: the first delivery clones, the second is the duplicate
    first, again = report.index("nightly snapshot (name template)"), report.index("the same run, delivered again")
    assert first < report.index("done: cloned -> 'golden-") < again < report.index("done: duplicate: 1 dataset")
    assert "BAD" not in report
    assert "EventBridge rule -> SQS" in report
    assert "dead-letter queue (2):" in report
    assert report.rstrip().endswith("every message reached its expected outcome")
    assert max(len(line) for line in report.splitlines()) <= 100, "the report fits a 100-column terminal"
    [readme_copy] = [block for block in blocks(ROOT / "README.md", "") if block.startswith("ok  ")]
    assert contains_in_order(readme_copy.splitlines(), report.splitlines()), "the README shows the demo as it is"


def test_the_demo_runs_every_event_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(["--events"]) == 0
    report = capsys.readouterr().out
    for path in sorted(demo.EVENTS.glob("*.json")):
        assert f"events/{path.name}" in report
    assert "dead-letter queue: 4 message(s)" in report
    assert max(len(line) for line in report.splitlines()) <= 100, "the report fits a 100-column terminal"


def test_the_demo_runs_one_event_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(["--event", str(demo.EVENTS / "sqs-delete-experiments.json")]) == 0
    report = capsys.readouterr().out
    assert "deleted 2 experiment(s)" in report
    assert "sqs-clone-dataset.json" not in report


def test_the_events_runner_names_a_scheduled_clone_after_its_scheduled_time(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(["--event", str(demo.EVENTS / "schedule-nightly-snapshot.json")]) == 0
    report = capsys.readouterr().out
    assert "cloned" in report
    assert "nothing cloned" not in report
