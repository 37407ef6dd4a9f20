"""llmobs-actions: drive Datadog LLM Observability from SQS and EventBridge messages."""

__version__ = "0.1.0"
