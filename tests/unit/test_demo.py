"""`make demo` stays true: the scenario demo, the events/ runner and the one-file mode all exit 0."""

from __future__ import annotations

import pytest

from local import demo
from local.seeded_ids import DATASET_ID, PROJECT_ID
from tests.doc_blocks import ROOT, blocks, contains_in_order


def test_the_demo_reaches_every_expected_outcome(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main([]) == 0
    report = capsys.readouterr().out
    assert report.count("\nok  ") == 17  # 16 messages and the script's call straight to Datadog
    # one result event per message, each the outcome it announced; the script's call announces none
    assert "16 messages: 14 expected done, 2 expected dead-lettered, 16 result events;" in report
    assert "1 call straight to Datadog" in report
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
    # the backup chain, in its order: the nightly backup exports both versions of the support project's golden
    # dataset, a script's batch_update deletes most records, the restore keeps that version in the bucket before
    # it rolls back, and last week's export comes back as a new dataset with the very records of that version
    scenes = ("ok nightly backup ", "ok a mistaken batch_update", "ok restore last night", "ok import last week")
    chain = [folded.index(scene) for scene in scenes]
    assert chain == sorted(chain)
    assert "done: exported 2 versions (44 records: v1 20, v2 24) of 'golden', each as Datadog holds it" in folded
    assert "(exported=2, already_there=0, failed=0, records_exported=44)" in folded
    assert "done: HTTP 200: deleted 21 of 24 records; 'golden' now has 3 records at version 3" in folded
    assert "done: 'golden' back to 24 records (version 4, a copy of version 2)" in folded
    assert "the mistaken version 3 (3 records) kept first, at s3://" in folded
    assert "/v3/manifest.json" in folded
    assert "(restored_version=2, exported_version=3)" in folded
    assert "20 records, equal to the export and to version 1 of 'golden'" in folded
    assert "name=golden (last week), record_count=20, source_version=1)" in folded
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
