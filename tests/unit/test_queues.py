"""SQS's rules for what the function sends: legal characters, and body plus attributes within the limit."""

from __future__ import annotations

from llmobs_actions.queues import fit_attributes, message_size, sqs_legal

REASON = {
    "error_class": "invalid",
    "error_message": "clone_dataset.name: " + "é" * 500,
    "source_message_id": "5b1c2d3e-0000-4000-8000-000000000001",
    "receive_count": "1",
    "failed_at": "2026-12-02T03:00:00+00:00",
    "datadog_error": "Generic Error: " + "d" * 300,
    "source_queue_arn": "arn:aws:sqs:us-east-1:123456789012:llmobs-actions-dev-actions",
}


def test_characters_sqs_refuses_are_escaped_and_the_rest_kept() -> None:
    assert sqs_legal("a\x00b\x01c\x1f\ufffe\ud800") == "a\\u0000b\\u0001c\\u001f\\ufffe\\ud800"
    kept = "tab\tnewline\ncr\r é 中 \U0001f600 \ue000"
    assert sqs_legal(kept) == kept


def test_attributes_that_fit_are_left_alone() -> None:
    assert fit_attributes("{}", REASON, 262_144) == REASON


def test_reasons_are_shortened_first_and_the_body_never_counts_less() -> None:
    body = "x" * 261_000
    fitted = fit_attributes(body, REASON, 262_144)
    assert message_size(body, fitted) <= 262_144
    assert fitted.keys() == REASON.keys(), "shortening was enough: nothing dropped"
    assert fitted["error_message"].startswith("clone_dataset.name: é")
    assert fitted["error_message"].endswith("[shortened to fit SQS's message size]")


def test_with_almost_no_room_the_class_survives_and_the_least_useful_attributes_go_first() -> None:
    body = "x" * (262_144 - 120)
    fitted = fit_attributes(body, REASON, 262_144)
    assert message_size(body, fitted) <= 262_144
    assert fitted["error_class"] == "invalid"
    assert "source_queue_arn" not in fitted
    assert next(iter(fitted)) == "error_class"


def test_a_cut_never_splits_a_character() -> None:
    fitted = fit_attributes("x" * 262_000, {"error_class": "invalid", "error_message": "é" * 200}, 262_144)
    fitted["error_message"].encode("utf-8")  # whole characters only
    assert message_size("x" * 262_000, fitted) <= 262_144
