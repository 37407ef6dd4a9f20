"""What EventBridge Scheduler does to a target's input: it replaces its context attributes, then delivers it
(at least once: a run may arrive twice, as two messages with the same input).

The attributes, from the Scheduler user guide ("Adding context attributes"): <aws.scheduler.schedule-arn>,
<aws.scheduler.scheduled-time> (e.g. 2022-03-22T18:59:43Z, the same for every delivery of one run),
<aws.scheduler.execution-id> and <aws.scheduler.attempt-number> (both differ from try to try).
"""

from __future__ import annotations

import secrets
from datetime import datetime

SCHEDULE_ARN = "arn:aws:scheduler:us-east-1:123456789012:schedule/default/llmobs-actions-dev-nightly"


def scheduled_input(template: str, scheduled_time: datetime, attempt: int = 1, schedule_arn: str = SCHEDULE_ARN) -> str:
    """The input Scheduler delivers for the run scheduled at `scheduled_time` (UTC)."""
    values = {
        "<aws.scheduler.schedule-arn>": schedule_arn,
        "<aws.scheduler.scheduled-time>": scheduled_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "<aws.scheduler.execution-id>": secrets.token_hex(8),
        "<aws.scheduler.attempt-number>": str(attempt),
    }
    for attribute, value in values.items():
        template = template.replace(attribute, value)
    return template
