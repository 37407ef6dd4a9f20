"""`dlq list` and `dlq redrive`: what is in the dead-letter queue and why, and back to the queue one by one
or, when nothing is filtered and every message keeps its identity, with an SQS move task."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from llmobs_actions.cli.output import DLQ_URL_VARIABLE, QUEUE_URL_VARIABLE, CliError, bar, client, confirm, required
from llmobs_actions.dead_letters import Selection, counts, read_all, redrive_selected, release
from llmobs_actions.messages import SOURCE_MESSAGE_ID


def dlq_list(args: argparse.Namespace) -> int:
    dlq_url = required(args.dlq_url, DLQ_URL_VARIABLE, "--dlq-url")
    sqs = client("sqs")
    _a_dead_letter_queue(sqs, dlq_url)
    letters = read_all(sqs, dlq_url, args.max)
    release(sqs, dlq_url, letters)
    tally = counts(letters)
    if args.json:
        print(json.dumps({"count": len(letters), **tally, "messages": [d.as_json() for d in letters]}, indent=2))
        return 0
    if not letters:
        print("0 message(s): the dead-letter queue is empty")
        return 0
    print(f"{'message id':36}  {'origin':11}  {'class':16}  {'http':4}  {'failed at':25}  reason")
    for letter in letters:
        failed = letter.failed_at
        print(
            f"{letter.source_message_id[:36]:36}  {letter.origin:11}  {letter.error_class[:16]:16}  "
            f"{letter.attributes.get('http_status', '-'):4}  "
            f"{failed.isoformat(timespec='seconds') if failed else '-':25}  {letter.reason}"
        )
    print(f"{len(letters)} message(s)")
    for title, tallied in (("by error_class", tally["by_error_class"]), ("by origin", tally["by_origin"])):
        if tallied:
            print(f"{title}: " + ", ".join(f"{name} {count}" for name, count in tallied.items()))
    return 0


def dlq_redrive(args: argparse.Namespace) -> int:
    dlq_url = required(args.dlq_url, DLQ_URL_VARIABLE, "--dlq-url")
    queue_url = required(args.queue_url, QUEUE_URL_VARIABLE, "--queue-url")
    sqs = client("sqs")
    _a_dead_letter_queue(sqs, dlq_url)
    selection = Selection(frozenset(args.error_class), args.older_than, args.include_invalid)
    letters = read_all(sqs, dlq_url, limit=100_000)
    release(sqs, dlq_url, letters)
    chosen = [letter for letter in letters if selection.takes(letter)]
    invalid_kept = sum(1 for letter in letters if letter.error_class == "invalid" and not args.include_invalid)
    plan = f"{len(chosen)} of {len(letters)} message(s) back to {queue_url}"
    if invalid_kept:
        plan += f" ({invalid_kept} invalid kept: they would fail again; --include-invalid takes them)"
    if not chosen:
        print(f"nothing to redrive: {plan}")
        return 0
    if args.dry_run:
        by_class = counts(chosen)["by_error_class"]
        print(f"dry run, would move {plan}: " + ", ".join(f"{name} {count}" for name, count in by_class.items()))
        return 0
    if not args.yes and not confirm(f"move {plan}?"):
        print("nothing moved")
        return 1
    print(f"moving {plan}")
    # A move task moves everything, what arrived since included, with new message ids and the attributes kept:
    # only for an unfiltered redrive of messages whose attributes name their first message (the function's).
    keeps_identity = all(SOURCE_MESSAGE_ID in letter.attributes for letter in letters)
    if (
        len(chosen) == len(letters)
        and not selection.filters
        and keeps_identity
        and _a_move_task_rate(args.max_per_second)
    ):
        return _move_task(sqs, dlq_url, queue_url, args)
    moved = redrive_selected(
        sqs,
        dlq_url,
        queue_url,
        selection,
        expected=len(chosen),
        max_per_second=args.max_per_second,
        progress=_progress(len(chosen)),
    )
    print(("" if sys.stdout.isatty() else bar(moved, len(chosen))) + f"\nmoved {moved} message(s)")
    return 0 if moved == len(chosen) else 1


def _progress(total: int) -> Callable[[int], None]:
    """A bar redrawn in place on a terminal; in a pipe or a CI log, no carriage returns: the bar once, at the end."""
    if sys.stdout.isatty():
        return lambda done: print(f"\r{bar(done, total)}", end="", flush=True)
    return lambda done: None


def _a_dead_letter_queue(sqs: Any, url: str) -> None:
    """Refuse a queue no redrive policy names: reading the actions queue as a DLQ would hide its messages."""
    from botocore.exceptions import ClientError

    try:
        sources = sqs.list_dead_letter_source_queues(QueueUrl=url).get("queueUrls", [])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("AccessDenied", "AccessDeniedException"):
            return  # not allowed to ask: the reader may still be right
        raise
    if not sources:
        raise CliError(
            f"{url} is no dead-letter queue: no queue's redrive policy names it "
            f"(give the stack's DeadLetterQueueUrl output, or set ${DLQ_URL_VARIABLE})"
        )


def _a_move_task_rate(rate: float | None) -> bool:
    """Whether SQS's move task can keep this rate: MaxNumberOfMessagesPerSecond is a whole number, 1 to 500."""
    return rate is None or (rate == int(rate) and 1 <= rate <= 500)


def _move_task(sqs: Any, dlq_url: str, queue_url: str, args: argparse.Namespace) -> int:
    source_arn, destination_arn = (
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for url in (dlq_url, queue_url)
    )
    # The destination is named: messages the function dead-lettered itself have no source SQS knows of.
    options = {"MaxNumberOfMessagesPerSecond": int(args.max_per_second)} if args.max_per_second else {}
    task = sqs.start_message_move_task(SourceArn=source_arn, DestinationArn=destination_arn, **options)
    print(f"started message move task {task['TaskHandle']}")
    if args.no_wait:
        return 0
    while True:
        [status] = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=1)["Results"]
        moved, total = (
            status.get("ApproximateNumberOfMessagesMoved", 0),
            status.get("ApproximateNumberOfMessagesToMove", 0),
        )
        ended = status["Status"] in ("COMPLETED", "CANCELLED", "FAILED")
        if sys.stdout.isatty():
            print(f"\r{bar(moved, total)} {status['Status'].lower()}", end="", flush=True)
        elif ended:  # in a pipe or a CI log, the end only: no carriage returns
            print(f"{bar(moved, total)} {status['Status'].lower()}", end="")
        if ended:
            print()
            if status["Status"] != "COMPLETED":
                raise CliError(f"the move task ended {status['Status']}: {status.get('FailureReason', '')}")
            return 0
        time.sleep(2)
