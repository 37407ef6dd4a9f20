"""`make demo` stays true: the scenario demo, the events/ runner and the one-file mode all exit 0."""

from __future__ import annotations

import pytest

from local import demo


def test_the_demo_reaches_every_expected_outcome(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main([]) == 0
    report = capsys.readouterr().out
    assert report.count("\nok  ") == 9
    assert "9 result events" in report  # one per message, each the outcome it announced
    assert "task SUCCEEDED" in report  # the state machine's task was completed with the new dataset
    assert "duplicate: 1 dataset" in report  # the nightly run Scheduler delivered twice
    assert "BAD" not in report
    assert "EventBridge rule -> SQS" in report
    assert "dead-letter queue (2):" in report
    assert report.rstrip().endswith("every message reached its expected outcome")


def test_the_demo_runs_every_event_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(["--events"]) == 0
    report = capsys.readouterr().out
    for path in sorted(demo.EVENTS.glob("*.json")):
        assert f"events/{path.name}" in report
    assert "dead-letter queue: 4 message(s)" in report


def test_the_demo_runs_one_event_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(["--event", str(demo.EVENTS / "sqs-delete-experiments.json")]) == 0
    report = capsys.readouterr().out
    assert "deleted 2 experiment(s)" in report
    assert "sqs-clone-dataset.json" not in report
