"""The rate budget (llmobs_actions/datadog/rate_budget.py), one test per line of its semantics."""

from __future__ import annotations

import pytest

from llmobs_actions.datadog import RateBudget, RateLimit


# One window per limit name; an operation learns its name from its own answers; one never answered is held
# back by nothing, and one limit used up holds back no operation of another.
def test_the_rate_budget_follows_the_headers_and_stops_calls_when_used_up() -> None:
    budget = RateBudget()
    assert budget.wait_seconds("clone_dataset", now=100.0, reserve=True) is None  # nothing known: go
    budget.observe("clone_dataset", RateLimit(remaining=2, reset_seconds=5, name="clones"), now=100.0)
    assert budget.wait_seconds("clone_dataset", now=101.0, reserve=True) is None
    assert budget.wait_seconds("clone_dataset", now=101.0, reserve=True) is None
    assert budget.wait_seconds("clone_dataset", now=101.0, reserve=True) == 4.0  # used up until the reset at 105
    assert budget.wait_seconds("clone_dataset", now=105.0, reserve=True) is None  # a new window


def test_one_exhausted_limit_does_not_hold_back_operations_under_another() -> None:
    budget = RateBudget()
    budget.observe("clone_dataset", RateLimit(remaining=0, reset_seconds=30, name="llm_obs_datasets"), now=0.0)
    assert budget.wait_seconds("clone_dataset", now=1.0) == 29.0
    assert budget.wait_seconds("delete_experiments", now=1.0) is None, "its limit is not known yet: not held back"
    budget.observe("delete_experiments", RateLimit(remaining=5, reset_seconds=30, name="llm_obs_experiments"), now=1.0)
    assert budget.wait_seconds("delete_experiments", now=2.0, reserve=True) is None


def test_operations_answered_under_one_shared_name_share_its_window() -> None:
    budget = RateBudget()
    budget.observe("delete_experiments", RateLimit(remaining=3, reset_seconds=30, name="llm_obs_api"), now=0.0)
    budget.observe("clone_dataset", RateLimit(remaining=0, reset_seconds=30, name="llm_obs_api"), now=0.5)
    assert budget.wait_seconds("delete_experiments", now=1.0) == 29.5


# Within a window the count only goes down.
def test_a_late_answer_never_raises_what_is_left_of_a_window() -> None:
    # GIVEN an answer saying 1 is left, then one sent earlier but answered later saying 4 were left
    budget = RateBudget()
    budget.observe("clone_dataset", RateLimit(limit=10, period=10, remaining=1, reset_seconds=9, name="n"), now=1.0)
    budget.observe("clone_dataset", RateLimit(limit=10, period=10, remaining=4, reset_seconds=8, name="n"), now=1.5)
    # THEN only one more request goes in this window
    assert budget.wait_seconds("clone_dataset", now=2.0, reserve=True) is None
    assert budget.wait_seconds("clone_dataset", now=2.0, reserve=True) == 8.0


# When a window of known size resets, the next starts counted: full, or at our share.
def test_a_window_of_known_size_starts_full_and_counts_its_first_burst() -> None:
    # GIVEN a window of 3 that our own three requests used up
    budget = RateBudget()
    for remaining in (2, 1, 0):
        limit = RateLimit(limit=3, period=10, remaining=remaining, reset_seconds=5, name="n")
        budget.observe("clone_dataset", limit, now=0.0)
    # THEN the next window starts full: 3 go, the rest wait for its end at 15
    sent = [budget.wait_seconds("clone_dataset", now=6.0, reserve=True) for _ in range(5)]
    assert sent == [None, None, None, 9.0, 9.0]


def test_a_limit_shared_with_other_sandboxes_is_used_at_our_share() -> None:
    # GIVEN a window of 10 used up while only 4 of its answers were ours (another sandbox took the rest)
    budget = RateBudget()
    for remaining in (8, 6, 3, 0):
        limit = RateLimit(limit=10, period=10, remaining=remaining, reset_seconds=5, name="n")
        budget.observe("clone_dataset", limit, now=0.0)
    # THEN the next window starts at our share, not at the whole limit the two would overshoot together
    sent = [budget.wait_seconds("clone_dataset", now=6.0, reserve=True) for _ in range(6)]
    assert sent == [None, None, None, None, 9.0, 9.0]
    # ...and a window after one that was not used up starts full again
    assert [budget.wait_seconds("clone_dataset", now=16.0, reserve=True) for _ in range(10)] == [None] * 10


# Windows are calendar-aligned: the end is the multiple of the period nearest to what the reset says.
def test_a_window_ends_on_its_period_s_calendar_boundary_whatever_the_whole_second_reset_says() -> None:
    budget = RateBudget()
    # 59.3 s into a minute, Datadog says the window resets in 1 s (it counts whole seconds): it ends at :60
    limit = RateLimit(limit=5, period=60, remaining=0, reset_seconds=1, name="n")
    budget.observe("clone_dataset", limit, now=1000.0, wall=59.3)
    assert budget.wait_seconds("clone_dataset", now=1000.0) == pytest.approx(0.7)
    # ...and the next window, of known size, starts at that boundary and lasts a whole period
    assert budget.wait_seconds("clone_dataset", now=1000.8, reserve=True) is None


# Sending into an exhausted window only earns 429s: the client stops itself until it resets.
def test_an_exhausted_window_says_how_long_to_wait_and_reserves_nothing() -> None:
    budget = RateBudget()
    budget.observe("delete_datasets", RateLimit(remaining=0, reset_seconds=10, name="n"), now=0.0)
    assert budget.wait_seconds("delete_datasets", now=4.0, reserve=True) == 6.0
    assert budget.wait_seconds("delete_datasets", now=4.0, reserve=True) == 6.0
