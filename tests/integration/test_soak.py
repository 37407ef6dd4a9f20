"""Soak: thousands of mixed messages with random faults (fixed seed) through the local stack.

`make test` runs a short version; `make soak` runs SOAK_MESSAGES=3000. Asserts conservation and that
the function's memory does not grow with the number of messages handled.
"""

from __future__ import annotations

import gc
import json
import os
import random
import tracemalloc

import pytest

from local.datadog_emulator import DatadogEmulator, Fault
from local.poller import Poller
from tests.conftest import DATASET_ID, PROJECT_ID, Aws, clone_action, delete_action
from tests.integration.conservation import account

MESSAGES = int(os.environ.get("SOAK_MESSAGES", "200"))


@pytest.mark.soak
def test_soak_conserves_every_message_in_bounded_memory(aws: Aws, emulator: DatadogEmulator, poller: Poller) -> None:
    chance = random.Random(20261122)
    expected: dict[str, str] = {}
    experiments = [emulator.add_experiment(PROJECT_ID, DATASET_ID, f"soak {n}") for n in range(MESSAGES)]

    def publish(count: int) -> None:
        bodies: list[tuple[str, str]] = []  # (kind, body), sent ten to a request as producers batch them
        for _ in range(count):
            number = len(expected) + len(bodies)
            kind = chance.choices(["clone", "delete", "invalid", "missing"], weights=[6, 3, 1, 1])[0]
            body: object = {
                "clone": clone_action(name=f"soak {number}"),
                "delete": delete_action(experiment_ids=[experiments[number]]),
                "invalid": "{" * chance.randint(1, 50),
                "missing": clone_action(dataset_id="gone", name=f"soak gone {number}"),
            }[kind]
            bodies.append((kind, body if isinstance(body, str) else json.dumps(body)))
            if chance.random() < 0.05:
                status = chance.choice([500, 503, 429, None])
                emulator.inject(
                    Fault(
                        status=status,
                        drop=status is None,
                        times=chance.randint(1, 2),
                        headers={"X-RateLimit-Reset": "1"},
                    )
                )
        for start in range(0, len(bodies), 10):
            chunk = bodies[start : start + 10]
            entries = [{"Id": str(n), "MessageBody": text} for n, (_, text) in enumerate(chunk)]
            sent = aws.sqs.send_message_batch(QueueUrl=aws.queue_url, Entries=entries)
            assert not sent.get("Failed")
            for entry in sorted(sent["Successful"], key=lambda e: int(e["Id"])):
                expected[entry["MessageId"]] = chunk[int(entry["Id"])][0]

    # Published 100 at a time: moto's ReceiveMessage slows down with the queue's length.
    chunks = [min(100, MESSAGES - start) for start in range(0, MESSAGES, 100)]
    tracemalloc.start()
    after_first_half = 0
    for number, size in enumerate(chunks, start=1):
        publish(size)
        assert poller.run_until_empty(timeout_seconds=120)
        if number == len(chunks) // 2:
            gc.collect()
            after_first_half = tracemalloc.get_traced_memory()[0]
    gc.collect()
    growth_mb = (tracemalloc.get_traced_memory()[0] - after_first_half) / 1_000_000
    tracemalloc.stop()
    half = sum(chunks[: len(chunks) // 2])

    where = account(aws, poller, set(expected))
    assert where.by_function == {m for m, kind in expected.items() if kind in ("invalid", "missing")}
    assert where.by_redrive == set(), "no retryable message exhausted its receives"
    for message_id, kind in expected.items():
        if kind == "clone":
            assert len(emulator.datasets_named(f"soak {list(expected).index(message_id)}")) == 1
    # The second half handled as many messages as the first: what it kept is state of the local stack
    # (recorded requests, cloned datasets, the poller's ledger), not of the function.
    per_message_kb = growth_mb * 1000 / (MESSAGES - half)
    assert per_message_kb < 60, f"{per_message_kb:.1f} kB kept per message"
