"""An hour-long Datadog outage, time-scaled: with the default back-off every message outlives it.

The local stack's SQS runs visibility delays 240 times faster (local/strict_aws.py `time_scale`, each delay
rounded up to a whole second), and the outage lasts 3600 / 240 = 15 s: the function keeps its real defaults
(30 s, x6, at most 1 h, five receives), so its waits of 30 s, 3 min, 18 min and 1 h become 1, 1, 5 and 15 s
(less their jitter, never below what the real wait is, scaled).
"""

from __future__ import annotations

import json

import pytest

from llmobs_actions import handler
from llmobs_actions.failures import Backoff
from local.datadog_emulator import DatadogEmulator
from local.poller import Poller, in_process
from tests.conftest import EXPERIMENT_IDS, Aws, clone_action, delete_action
from tests.integration.conservation import account

SCALE = 240
HOUR = 3600


@pytest.mark.slow
def test_every_message_outlives_an_hour_long_outage_with_the_default_backoff(
    aws: Aws, emulator: DatadogEmulator, function_env: None
) -> None:
    # GIVEN the template's defaults: five receives, the default back-off, an SQS clock 240x faster
    assert aws.front is not None
    assert Backoff().survives_seconds(aws.values.max_receive_count) >= HOUR
    aws.front.time_scale = SCALE
    handler.processor.cache_clear()
    poller = Poller(
        aws.sqs, aws.queue_url, aws.queue_arn, in_process(handler.lambda_handler, 60), aws.values.batch_size
    )

    # WHEN Datadog is down for an hour, starting as the messages arrive
    emulator.outage(HOUR / SCALE)
    names = [f"through the outage {n}" for n in range(5)]
    sent = {
        str(aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=json.dumps(clone_action(name=name)))["MessageId"])
        for name in names
    }
    sent.add(str(aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=json.dumps(delete_action()))["MessageId"]))
    assert poller.run_until_empty(timeout_seconds=3 * HOUR / SCALE)

    # THEN after it, each message is done once and the DLQ is empty: nobody was paged for a passing incident
    where = account(aws, poller, sent)
    assert where.done == sent
    assert aws.dead_letters() == []
    assert all(len(emulator.datasets_named(name)) == 1 for name in names)
    assert all(emulator.experiments[i].deleted_at for i in EXPERIMENT_IDS)
    assert all(poller.deliveries[m].receives > 2 for m in sent), "every message did meet the outage"
