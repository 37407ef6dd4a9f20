"""Every AWS call after the action fits the time left (aws_clients.Bounds): its usual bounds when they fit,
shorter reads and fewer tries when they do not, none at all when not even the shortest fits."""

from __future__ import annotations

from llmobs_actions.aws_clients import Bounds

USUAL = Bounds(connect_timeout=2, read_timeout=5, max_attempts=2)


def test_a_worst_case_counts_every_try_and_botocore_s_back_off_between_them() -> None:
    assert USUAL.worst_case_seconds == 2 * (2 + 5) + 1


def test_the_usual_bounds_when_they_fit() -> None:
    assert USUAL.within(20) == USUAL


def test_shorter_reads_then_fewer_tries_when_time_is_short() -> None:
    assert USUAL.within(12) == Bounds(2, 3, 2)  # 2 x (2 + 3) + 1 = 11
    tight = USUAL.within(1.5)
    assert tight is not None
    assert tight.worst_case_seconds <= 1.5


def test_no_call_at_all_when_not_even_the_shortest_fits() -> None:
    assert USUAL.within(0.4) is None
