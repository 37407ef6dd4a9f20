"""The SQS events the bench hands to both functions (standard library only: the cold-start probe imports it)."""

from __future__ import annotations

import json
from typing import Any

from local.seeded_ids import DATASET_ID, PROJECT_ID


def clone_event(count: int, tag: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"{tag}-{n}",
                "receiptHandle": f"handle-{tag}-{n}",
                "body": json.dumps(
                    {
                        "action": "clone_dataset",
                        "project_id": PROJECT_ID,
                        "dataset_id": DATASET_ID,
                        "name": f"{tag}-{n}",
                    }
                ),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench",
                "awsRegion": "us-east-1",
            }
            for n in range(count)
        ]
    }
