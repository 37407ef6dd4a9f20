"""Conservation: where every sent message ended up, with the invariants that must always hold."""

from __future__ import annotations

from dataclasses import dataclass

from local.poller import Poller
from tests.conftest import Aws


@dataclass(frozen=True)
class Accounting:
    done: set[str]  # deleted from the queue after the action took effect
    by_function: set[str]  # dead-lettered by the function, with its reason
    by_redrive: set[str]  # moved to the DLQ by SQS after maxReceiveCount


def account(aws: Aws, poller: Poller, sent: set[str]) -> Accounting:
    """Where each message is; fails when one was lost, handled twice, or both handled and redriven."""
    deleted = {m for m, d in poller.deliveries.items() if d.deleted}
    dead = aws.dead_letters()
    by_function = {d["attributes"]["source_message_id"] for d in dead if "source_message_id" in d["attributes"]}
    by_redrive = {d["id"] for d in dead if "source_message_id" not in d["attributes"]}
    assert len(dead) == len(by_function) + len(by_redrive), "a message was dead-lettered twice"
    assert by_function <= deleted, "the function dead-lettered a message but left it in its queue"
    assert deleted.isdisjoint(by_redrive), "a message was both handled and redriven"
    assert deleted | by_redrive == sent, "a message was lost"
    return Accounting(deleted - by_function, by_function, by_redrive)
