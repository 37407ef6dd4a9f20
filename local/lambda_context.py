"""The parts of Lambda's context object the handler reads, standard library only (a cold-start probe imports it)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class LambdaContext:
    """The remaining time counts down from `remaining_ms`."""

    function_name: str = "llmobs-actions-dev-ActionsFunction"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:llmobs-actions-dev-ActionsFunction"
    aws_request_id: str = "52fdfc07-2182-454f-963f-5f0f9a621d72"
    remaining_ms: int = 60_000
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.remaining_ms - int((time.monotonic() - self.started) * 1000))
