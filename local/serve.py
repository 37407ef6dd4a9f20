"""`make local`: the local stack in the foreground, for trying the CLI by hand.

Starts the strict AWS front over moto (queues, DLQ, table, rules, secret from template.yaml), the Datadog
emulator with the seeded project, dataset and experiments, and the function in its own process behind a
Lambda Runtime API, fed by a poller that plays the SQS event source mapping. It prints the `export` lines
that point the CLI (and `invoke`) at it, a line per message the function finishes, and stops cleanly on
Ctrl-C. Nothing is kept: the next run starts from the seeded data again.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

from llmobs_actions.cli import outcome_line
from llmobs_actions.cli.output import DLQ_URL_VARIABLE, QUEUE_URL_VARIABLE
from local.poller import Poller
from local.runtime_api import LambdaRuntime
from local.seeded_ids import DATASET_ID, EXPERIMENT_IDS, PROJECT_ID
from local.servers import thread
from local.stack import AWS_TEST_ENVIRONMENT, AwsResources, local_stack

READY = "# the local stack is up; Ctrl-C stops it"


def exports(resources: AwsResources, environment: dict[str, str]) -> list[str]:
    """The shell lines that point the CLI, and `invoke`, at this stack."""
    values = {
        "AWS_ENDPOINT_URL": resources.endpoint,
        **{name: AWS_TEST_ENVIRONMENT[name] for name in ("AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID")},
        "AWS_SECRET_ACCESS_KEY": AWS_TEST_ENVIRONMENT["AWS_SECRET_ACCESS_KEY"],
        # what the docs' examples name, and the CLI's own defaults for --queue-url and --dlq-url
        "QUEUE_URL": resources.queue_url,
        "DLQ_URL": resources.dlq_url,
        QUEUE_URL_VARIABLE: resources.queue_url,
        DLQ_URL_VARIABLE: resources.dlq_url,
        # the seeded data the examples act on
        "PROJECT": PROJECT_ID,
        "DATASET": DATASET_ID,
        "EXPERIMENT": EXPERIMENT_IDS[0],
        # what `llmobs-actions invoke` reads, as the template sets it for the function
        **{name: environment[name] for name in ("DD_API_URL", "DD_SECRET_ID", "DEAD_LETTER_QUEUE_URL")},
        **{name: environment[name] for name in ("IDEMPOTENCY_TABLE", "POWERTOOLS_TRACE_DISABLED")},
        **{name: environment[name] for name in ("BACKUP_BUCKET", "ACTIONS_QUEUE_URL") if name in environment},
    }
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logs", action="store_true", help="print the function's JSON log lines too")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def stopping(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, stopping)
    signal.signal(signal.SIGTERM, stopping)
    with local_stack() as (aws, emulator), tempfile.TemporaryDirectory() as scratch:
        environment = dict(os.environ)  # local_stack points this process, and so the function, at itself
        log_path = Path(scratch) / "function.log"
        with (
            log_path.open("w") as log,
            LambdaRuntime(
                {}, aws.values.function_timeout_seconds, function_name="llmobs-actions-local", log=log
            ) as runtime,
        ):
            poller = Poller(aws.sqs, aws.queue_url, aws.queue_arn, runtime.invoke, aws.values.batch_size)

            def poll() -> None:
                while not stop.is_set():
                    poller.poll_once(wait_seconds=1)
                    for event in aws.result_events():  # what each finished message announced, a line each
                        detail = event["detail"]
                        said = outcome_line(detail).splitlines()[0]
                        print(f"# {detail.get('message_id')} {detail.get('action')}: {said}", flush=True)
                    if args.logs:
                        print(log_path.read_text(), end="", flush=True)
                        log_path.write_text("")

            print("\n".join(exports(aws, environment)))
            print(f"# Datadog emulator {emulator.url}; the function's log: {log_path}")
            print(READY, flush=True)
            polling = thread(poll, "serve-poller")
            stop.wait()
            polling.join(timeout=30)
    print("# the local stack is stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
