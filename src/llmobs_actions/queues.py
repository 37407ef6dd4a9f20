"""SQS adapter: send a message to the dead-letter queue, delay a message's next delivery."""

from __future__ import annotations

import threading
from typing import Any, Protocol


class SqsClient(Protocol):
    def send_message(self, **kwargs: Any) -> dict[str, Any]: ...
    def change_message_visibility(self, **kwargs: Any) -> dict[str, Any]: ...
    def get_queue_url(self, **kwargs: Any) -> dict[str, Any]: ...


class Queues:
    def __init__(self, dead_letter_queue_url: str, client: SqsClient | None = None) -> None:
        self._dead_letter_queue_url = dead_letter_queue_url
        self._client = client
        self._lock = threading.Lock()
        self._queue_urls: dict[str, str] = {}

    @property
    def client(self) -> SqsClient:
        with self._lock:  # boto3 clients are thread-safe; creating one is not
            if self._client is None:
                import boto3  # at the first use: the handler's import stays light
                from botocore.config import Config

                # Short, bounded AWS calls: a slow SQS must not eat the Lambda's time budget.
                config = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"})
                self._client = boto3.client("sqs", config=config)
            return self._client

    def dead_letter(self, body: str, attributes: dict[str, str]) -> str:
        response = self.client.send_message(
            QueueUrl=self._dead_letter_queue_url,
            MessageBody=body,
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value} for name, value in attributes.items() if value
            },
        )
        return str(response["MessageId"])

    def delay(self, source_queue_arn: str, receipt_handle: str, seconds: int) -> None:
        self.client.change_message_visibility(
            QueueUrl=self.queue_url(source_queue_arn), ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )

    def queue_url(self, queue_arn: str) -> str:
        """Resolve arn:aws:sqs:<region>:<account>:<name> to its URL (works on AWS and moto alike)."""
        cached = self._queue_urls.get(queue_arn)
        if cached is not None:
            return cached
        parts = queue_arn.split(":")
        if len(parts) != 6 or parts[2] != "sqs":
            raise ValueError(f"not an SQS queue ARN: {queue_arn!r}")
        url = str(self.client.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"])
        self._queue_urls[queue_arn] = url
        return url
