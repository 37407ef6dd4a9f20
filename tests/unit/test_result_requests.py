"""Result events gathered over a batch go out in as few PutEvents requests as EventBridge's limits allow."""

from __future__ import annotations

from llmobs_actions.results import EVENTS_BYTES_PER_CALL, EVENTS_PER_CALL, _requests_of


def entry(detail_bytes: int) -> dict[str, str]:
    return {"Source": "llmobs.actions", "DetailType": "LLMObs Action Succeeded", "Detail": "x" * detail_bytes}


def size(entries: list[dict[str, str]]) -> int:
    return sum(14 + len(e["Source"]) + len(e["DetailType"]) + len(e["Detail"]) for e in entries)


def test_small_entries_go_ten_a_request_in_order() -> None:
    entries = [entry(100) | {"n": str(n)} for n in range(23)]
    requests = list(_requests_of(entries))
    assert [len(r) for r in requests] == [10, 10, 3]
    assert [e["n"] for r in requests for e in r] == [str(n) for n in range(23)]


def test_large_entries_split_before_a_request_passes_256_kb() -> None:
    entries = [entry(60_000) for _ in range(10)]  # ten of them would be about 600 KB
    requests = list(_requests_of(entries))
    assert all(size(r) <= EVENTS_BYTES_PER_CALL and len(r) <= EVENTS_PER_CALL for r in requests)
    assert [len(r) for r in requests] == [4, 4, 2]
