"""What the command line prints of an outcome."""

from __future__ import annotations

from llmobs_actions import cli


def test_an_adopted_clone_s_outcome_names_no_version_it_does_not_know() -> None:
    detail = {
        "status": "succeeded",
        "action": "clone_dataset",
        "result": {"new_dataset_id": "d-1", "name": "snap", "current_version": None, "adopted": True},
    }
    assert cli.outcome_line(detail) == "done: new dataset d-1 named 'snap' (made by an earlier attempt)"


def test_a_clone_s_outcome_names_its_version() -> None:
    detail = {"status": "succeeded", "result": {"new_dataset_id": "d-2", "name": "snap", "current_version": 0}}
    assert cli.outcome_line(detail) == "done: new dataset d-2 named 'snap' (version 0)"
