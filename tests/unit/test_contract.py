"""The message contract: what producers may send, and every kind of message it must refuse."""

from __future__ import annotations

from typing import Any

import pytest

from llmobs_actions.contract import CloneDataset, DeleteExperiments, InvalidAction, parse_action
from tests.conftest import DATASET_ID, EXPERIMENT_IDS, PROJECT_ID, clone_action, delete_action


def test_a_full_clone_action_parses() -> None:
    action = parse_action(clone_action(description="nightly", idempotency_key="k-1", dry_run=True))
    assert isinstance(action, CloneDataset)
    assert (action.project_id, action.dataset_id, action.name) == (PROJECT_ID, DATASET_ID, "snapshot")
    assert (action.description, action.idempotency_key, action.dry_run) == ("nightly", "k-1", True)


def test_a_minimal_delete_action_parses_with_defaults() -> None:
    action = parse_action(delete_action())
    assert isinstance(action, DeleteExperiments)
    assert action.experiment_ids == EXPERIMENT_IDS
    assert (action.idempotency_key, action.dry_run) == (None, False)


UNSAFE_IDS = ["../x", "a/b", "a?b", "%2e", "a b", " ", "a\nb", "a\x00b", "a#b", "", "é", "a.b", "x" * 129, "a\r\nX: y"]


@pytest.mark.parametrize("unsafe", UNSAFE_IDS)
@pytest.mark.parametrize("field", ["project_id", "dataset_id"])
def test_clone_ids_that_are_not_safe_path_segments_are_invalid(field: str, unsafe: str) -> None:
    with pytest.raises(InvalidAction, match=f"clone_dataset.{field}"):
        parse_action(clone_action(**{field: unsafe}))


@pytest.mark.parametrize("unsafe", UNSAFE_IDS)
def test_experiment_ids_that_are_not_safe_path_segments_are_invalid(unsafe: str) -> None:
    with pytest.raises(InvalidAction, match=r"delete_experiments.experiment_ids.1"):
        parse_action(delete_action(experiment_ids=[EXPERIMENT_IDS[0], unsafe]))


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"action": "rename_dataset"}, "does not match any of the expected tags"),
        ({"project_id": PROJECT_ID}, "Unable to extract tag using discriminator 'action'"),
        (clone_action() | {"name": None}, "clone_dataset.name: Input should be a valid string"),
        ({k: v for k, v in clone_action().items() if k != "name"}, "clone_dataset.name: Field required"),
        (clone_action(name=""), "clone_dataset.name: String should have at least 1 character"),
        (clone_action(name="   "), "clone_dataset.name: String should match pattern"),
        (clone_action(name="two\nlines"), "clone_dataset.name: String should match pattern"),
        (clone_action(name="x" * 201), "at most 200 characters"),
        (clone_action(project_id=12345), "clone_dataset.project_id: Input should be a valid string"),
        (clone_action(dry_run="false"), "clone_dataset.dry_run: Input should be a valid boolean"),
        (clone_action(dataset="typo"), "clone_dataset.dataset: Extra inputs are not permitted"),
        (clone_action(dataset_name="golden"), "clone_dataset: Value error, give dataset_id or dataset_name, not both"),
        (delete_action(experiment_ids=[]), "at least 1 item"),
        (delete_action(experiment_ids=EXPERIMENT_IDS[0]), "Input should be a valid list"),
        (delete_action(experiment_ids=[EXPERIMENT_IDS[0], 7]), "experiment_ids.1: Input should be a valid string"),
        (delete_action(experiment_ids=["a", "b", "a"]), "duplicate experiment ids: a"),
        (delete_action(idempotency_key=""), "idempotency_key: String should have at least 1 character"),
        (["clone_dataset"], "Input should be a valid dictionary"),
        ("clone_dataset", "Input should be a valid dictionary"),
        (None, "Input should be a valid dictionary"),
    ],
)
def test_messages_that_break_the_contract_are_invalid_with_a_clear_reason(payload: Any, reason: str) -> None:
    with pytest.raises(InvalidAction, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_action(payload)


def test_the_experiment_id_limit_is_configurable() -> None:
    ids = [f"exp-{n}" for n in range(5)]
    assert isinstance(parse_action(delete_action(experiment_ids=ids), max_experiment_ids=5), DeleteExperiments)
    with pytest.raises(InvalidAction, match=r"5 experiment ids is more than this deployment accepts \(4\)"):
        parse_action(delete_action(experiment_ids=ids), max_experiment_ids=4)


def test_the_hard_ceiling_holds_whatever_the_setting() -> None:
    with pytest.raises(InvalidAction, match="at most 10000 items"):
        parse_action(delete_action(experiment_ids=[f"e{n}" for n in range(10_001)]), max_experiment_ids=10_000)


def test_errors_never_echo_the_input() -> None:
    secretish = "s3cr3t-" + "x" * 50
    with pytest.raises(InvalidAction) as raised:
        parse_action(clone_action(project_id=f"{secretish}/..", extra=secretish))
    assert secretish not in str(raised.value)
