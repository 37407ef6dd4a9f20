"""`make demo` stays true: the demo runs every event file on its own local stack and exits 0."""

from __future__ import annotations

import pytest

from local import demo


def test_the_demo_reports_every_event_file_and_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main([]) == 0
    report = capsys.readouterr().out
    for path in sorted(demo.EVENTS.glob("*.json")):
        assert f"events/{path.name}" in report
    assert "dead-letter queue: 4 message(s)" in report
    assert report.rstrip().endswith("OK")


def test_the_demo_runs_one_event_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(["--event", str(demo.EVENTS / "sqs-delete-experiments.json")]) == 0
    report = capsys.readouterr().out
    assert "deleted 2 experiment(s)" in report
    assert "sqs-clone-dataset.json" not in report
