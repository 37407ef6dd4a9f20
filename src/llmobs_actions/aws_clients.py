"""The AWS clients of one execution environment, all made from one boto3 session, at their first use.

botocore caches what it loads (service models, endpoint rulesets, partitions) per session: a client made
from a session of its own costs 60-90 ms more at a cold start than one from a session already used.
Secrets Manager, DynamoDB (idempotency), SQS and EventBridge therefore share one session here, and each
client is made only when a record first needs it.
"""

from __future__ import annotations

import threading
from typing import Any


class AwsClients:
    def __init__(self, max_connections: int = 10) -> None:
        self._max_connections = max_connections  # one connection per record of a batch: none waits for another
        self._lock = threading.Lock()  # clients are thread-safe; making one (and the session) is not
        self._session: Any = None

    def client(self, service: str, *, connect_timeout: float, read_timeout: float, max_attempts: int) -> Any:
        """A new client with bounded calls: a slow AWS service must not eat the Lambda's time."""
        import boto3  # at the first use: the handler's import stays light
        from botocore.config import Config

        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            max_pool_connections=self._max_connections,
        )
        with self._lock:
            if self._session is None:
                self._session = boto3.session.Session()
            return self._session.client(service, config=config)
