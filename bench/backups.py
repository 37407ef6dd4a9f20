"""`make bench`, backups: export_dataset and import_dataset at 10,000 and 100,000 records of about 2 KB each.

As deployed: the function in its own process (awslambdaric behind local/runtime_api.py), with the template's
FunctionTimeout and Datadog timeouts (the local stack's shortened ones are set aside), fed by the poller as
Lambda's event source mapping feeds it: the request, then every continuation the function sends to the queue,
until the queue is empty. A run is timed from the send to the end of the invocation that finished the work (the
export: the one that wrote the manifest; the import: the one that made the new dataset whole). Peak RSS is the
function process's VmHWM, one fresh process for each export and each import.
"""

from __future__ import annotations

import collections
import gzip
import itertools
import json
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3

from local.datadog_emulator import DatadogEmulator, Dataset
from local.poller import Poller
from local.runtime_api import LambdaRuntime
from local.stack import PROJECT_ID, AwsResources
from local.strict_aws import is_s3

SIZES = (10_000, 100_000)
QUICK_SIZES = (1_000, 10_000)
RECORD_BYTES = 2_000  # the context's length; a record's JSON line is about 2.1 KB
MEMORY_MB = 256  # the template's default FunctionMemorySize
# Memory flat: the 100k peak within this of the 10k peak. Two 8 MiB parts' worth: what the part size alone may
# add, since 10,000 records of 2 KB make one part smaller than PART_BYTES and 100,000 make full ones.
FLAT_MB = 16
RUN_BUDGET_SECONDS = 150.0  # one export or import, every continuation included
# The local stack shortens these to provoke timeouts quickly; the template leaves them to Settings' defaults
# (15 s read, 3.05 s connect), and so does this group: a 100k upload takes the emulator seconds to ingest.
_LOCAL_ONLY = ("DD_READ_TIMEOUT_SECONDS", "DD_CONNECT_TIMEOUT_SECONDS")
_FIELDS = ("id", "input", "expected_output", "metadata")  # what an export keeps (the records API has no tags)

# Words of a support knowledge base, most common first: drawn with Zipf-like weights (as words in text are),
# so that gzip meets repeated words and phrases, not one repeated byte nor random bytes. The records' JSON
# Lines compress about 3.5x (gzip level 6, as the export writes them): see `gzip_ratio` in the results.
_TEXT = """
the a to of and in is for that you on it with your be can this are as or if by not from at an will have
when which all account order customer data request support please service time plan may any new more use
access payment information number user policy refund team also one after we must only other within days
change update each before their our how who billing their invoice email address product subscription
settings password report days system error message page team members permission admin workspace project
dataset version export import backup record region storage limit quota usage monthly annual trial renew
cancel upgrade downgrade contract terms security review audit log retention deletion restore recovery
integration webhook token key secret rotate expire session login sign device browser mobile app network
latency outage incident status notification alert threshold schedule daily weekly queue retry timeout
available between during without through because however therefore although unless until while where
first second last next previous current original final typical specific general standard premium basic
"""
_WORDS = list(dict.fromkeys(_TEXT.split()))
_CUM_WEIGHTS = list(itertools.accumulate(1 / (rank + 2) for rank in range(len(_WORDS))))


def vm_hwm_mb(pid: int) -> float:
    """A process's peak resident set so far (VmHWM in /proc/<pid>/status), in MB; 0 once the process is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(found.group(1)) / 1024 if found else 0.0


def source_records(count: int, seed: int = 20240601) -> list[dict[str, Any]]:
    """`count` records of about RECORD_BYTES of context each, the same ones on every run (seeded).

    Sentences come from a pool of 4,000 made of Zipf-weighted words, with numbers of the record's own: a gzip
    window (32 KB) rarely holds the same sentence twice, so the ratio is the words', about 3.5x."""
    rng = random.Random(seed)  # noqa: S311 (text to compress, not secrets)
    pool = []
    for _ in range(4000):
        words = rng.choices(_WORDS, cum_weights=_CUM_WEIGHTS, k=rng.randint(6, 22))
        pool.append(" ".join(words).capitalize() + rng.choice((".", ".", ".", "?", ",", ";")))
    records = []
    for n in range(count):
        parts, length = [], 0
        while length < RECORD_BYTES:
            sentence = pool[rng.randrange(4000)]
            if rng.random() < 0.15:
                sentence += f" Ticket {rng.randrange(10**6):06d} on {2020 + n % 6}-{1 + n % 12:02d}-{1 + n % 28:02d}."
            parts.append(sentence)
            length += len(sentence) + 1
        context = " ".join(parts)[:RECORD_BYTES]
        question = " ".join(rng.choices(_WORDS, cum_weights=_CUM_WEIGHTS, k=12)).capitalize() + "?"
        records.append(
            {
                "id": f"rec-{n:06d}",
                "input": {"question": question, "context": context},
                "expected_output": " ".join(rng.choices(_WORDS, cum_weights=_CUM_WEIGHTS, k=24)).capitalize() + ".",
                "metadata": {"n": n, "source": "bench", "split": ("train", "test", "eval")[n % 3]},
            }
        )
    return records


def gzip_ratio(records: list[dict[str, Any]]) -> float:
    """How much the export's format (JSON Lines, gzip level 6) shrinks these records."""
    lines = b"".join(
        json.dumps({f: r.get(f) for f in (*_FIELDS, "tags")}, separators=(",", ":")).encode() + b"\n" for r in records
    )
    return len(lines) / len(gzip.compress(lines, compresslevel=6))


class _Sampled:
    """The function process's peak RSS, read every 0.2 s and after each invocation (a sandbox killed at its
    deadline is replaced by a new process: the peak is the largest of every process's)."""

    def __init__(self, runtime: LambdaRuntime) -> None:
        self.runtime, self.peak_mb = runtime, 0.0
        self._peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def read(self) -> None:
        pid = self.runtime.pid
        self._peaks[pid] = max(self._peaks.get(pid, 0.0), vm_hwm_mb(pid))
        self.peak_mb = max(self._peaks.values())

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.read()

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self.read()
        return self.peak_mb


class _Timed:
    """Seconds spent in a callable, by a key drawn from its arguments (the emulator's work, moto's)."""

    def __init__(self, key: Callable[..., str]) -> None:
        self.seconds: collections.Counter[str] = collections.Counter()
        self._key, self._lock = key, threading.Lock()

    def wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                with self._lock:
                    self.seconds[self._key(*args, **kwargs)] += time.perf_counter() - started

        return timed


@contextmanager
def _watched(aws: AwsResources, emulator: DatadogEmulator) -> Iterator[tuple[_Timed, _Timed]]:
    """Time the emulator's own work (DatadogEmulator.route: records paged, uploads ingested) and moto's (the
    strict front's forward, by service: S3, DynamoDB, ...): both in this process, apart from the function's."""

    def datadog_key(method: str, path: str, *_: Any, **__: Any) -> str:
        return "upload" if path.endswith("/records/upload") else "records" if path.endswith("/records") else "other"

    def aws_key(method: str, path: str, headers: dict[str, str], *_: Any, **__: Any) -> str:
        target = next((v for k, v in headers.items() if k.lower() == "x-amz-target"), "")
        return "s3" if is_s3(headers, path) else target.split(".")[0].split("_")[0] or "other"  # DynamoDB, ...

    datadog, moto = _Timed(datadog_key), _Timed(aws_key)
    emulator.route = datadog.wrap(emulator.route)  # type: ignore[method-assign]
    if aws.front is not None:
        aws.front.forward = moto.wrap(aws.front.forward)  # type: ignore[method-assign]
    try:
        yield datadog, moto
    finally:
        del emulator.route  # the class's again
        if aws.front is not None:
            del aws.front.forward


@contextmanager
def _template_timeouts() -> Iterator[None]:
    saved = {name: os.environ.pop(name) for name in _LOCAL_ONLY if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def _run(
    aws: AwsResources,
    emulator: DatadogEmulator,
    body: dict[str, Any],
    finished: Callable[[], bool],
    handler: str,
    source: Path,
    budget_seconds: float,
) -> dict[str, Any]:
    """One request, and its continuations, to the end: seconds, invocations, peak RSS, the emulator's and moto's
    seconds, and what the poller saw (function errors, retries)."""
    from llmobs_actions.settlement import MAX_INVOCATIONS_IN_A_CHAIN  # here: the bench imports the function late

    timeout = aws.values.function_timeout_seconds
    runtime = LambdaRuntime({}, timeout, handler=handler, source=source)
    memory = _Sampled(runtime)
    ended: list[float] = []

    def invoke(event: dict[str, Any]) -> Any:
        try:
            return runtime.invoke(event)
        finally:
            ended.append(time.monotonic())
            memory.read()

    # One poller, so one invocation at a time: the bench's 2 s visibility timeout (not the template's 365 s)
    # cannot hand a message out twice, and brings one back soon if an invocation fails.
    poller = Poller(boto3.client("sqs"), aws.queue_url, aws.queue_arn, invoke, batch_size=aws.values.batch_size)
    dead_before = len(aws.dead_letters())
    with _watched(aws, emulator) as (datadog, moto):
        started = time.monotonic()
        boto3.client("sqs").send_message(QueueUrl=aws.queue_url, MessageBody=json.dumps(body))
        emptied = poller.run_until_empty(timeout_seconds=budget_seconds)
    peak = memory.stop()
    runtime.close()
    responses = [r for d in poller.deliveries.values() for r in d.responses]
    return {
        "seconds": (ended[-1] if ended else time.monotonic()) - started,
        "invocations": poller.invocations,
        "continuations": len(poller.deliveries) - 1,
        "peak_rss_mb": peak,
        "finished": emptied and finished(),
        "function_errors": sum(1 for r in responses if r.startswith("error")),
        "retries": responses.count("retry"),
        "dead_lettered": len(aws.dead_letters()) - dead_before,
        "cold_starts": runtime.cold_starts,
        "emulator_seconds": dict(datadog.seconds),
        # The function's calls, but SQS: the poller's long polls and deletes are Lambda's (a continuation's one
        # SendMessage a run is left out with them).
        "moto_seconds": {k: v for k, v in moto.seconds.items() if k != "AmazonSQS"},
        "within_chain_limit": poller.invocations <= MAX_INVOCATIONS_IN_A_CHAIN,
    }


def _manifest(aws: AwsResources, dataset: Dataset) -> dict[str, Any] | None:
    key = f"{aws.values.backup_prefix}{PROJECT_ID}/{dataset.id}/v{dataset.current_version}/manifest.json"
    try:
        document: dict[str, Any] = json.loads(
            boto3.client("s3").get_object(Bucket=aws.bucket_name, Key=key)["Body"].read()
        )
    except Exception:  # not there yet: the export is not finished
        return None
    return document


def _as_exported(record: dict[str, Any]) -> dict[str, Any]:
    return {field: record.get(field) for field in _FIELDS}


def exactly_once(source: Dataset, imported: list[Dataset]) -> dict[str, int]:
    """Records of the source missing from the import, there more than once, or different; and records the source
    never had. All zero: every record arrived once, as it was."""
    if len(imported) != 1:
        return {
            "datasets_made": len(imported),
            "missing": len(source.records),
            "duplicated": 0,
            "changed": 0,
            "unknown": 0,
        }
    [made] = imported
    counted = collections.Counter(r["id"] for r in made.records)
    held = {r["id"]: _as_exported(r) for r in made.records}
    return {
        "datasets_made": 1,
        "missing": sum(1 for r in source.records if r["id"] not in counted),
        "duplicated": sum(n - 1 for n in counted.values()),
        "changed": sum(1 for r in source.records if r["id"] in held and held[r["id"]] != _as_exported(r)),
        "unknown": len(set(counted) - {r["id"] for r in source.records}),
    }


def backups(
    aws: AwsResources, emulator: DatadogEmulator, handler: str, source: Path, sizes: tuple[int, ...] = SIZES
) -> dict[str, Any]:
    """Export, then import, a dataset of each size; the figures by size, and the records' gzip ratio."""
    started = time.monotonic()
    records = source_records(max(sizes))
    figures: dict[str, Any] = {
        "record_bytes": RECORD_BYTES,
        "gzip_ratio": gzip_ratio(records[:2000]),
        "seed_seconds": time.monotonic() - started,
        "function_timeout_seconds": aws.values.function_timeout_seconds,
        "function_memory_mb": MEMORY_MB,
    }
    requests_before = len(emulator.requests)
    made: list[str] = []
    with _template_timeouts():
        for size in sizes:
            dataset = emulator.add_dataset(PROJECT_ID, f"bench-backup-{size}", records=0)
            dataset.replace_current(records[:size], dataset.created_at)
            made.append(dataset.id)
            exported = _run(
                aws,
                emulator,
                {"action": "export_dataset", "project_id": PROJECT_ID, "dataset_id": dataset.id},
                lambda dataset=dataset, size=size: (_manifest(aws, dataset) or {}).get("record_count") == size,
                handler,
                source,
                RUN_BUDGET_SECONDS,
            )
            uri = f"s3://{aws.bucket_name}/{aws.values.backup_prefix}{PROJECT_ID}/{dataset.id}/v{dataset.current_version}/manifest.json"
            name = f"bench-imported-{size}"

            def whole(name: str = name, size: int = size) -> bool:
                return sum(len(d.records) for d in emulator.datasets_named(name)) == size

            imported = _run(
                aws,
                emulator,
                {"action": "import_dataset", "project_id": PROJECT_ID, "source_uri": uri, "name": name},
                whole,
                handler,
                source,
                RUN_BUDGET_SECONDS,
            )
            targets = emulator.datasets_named(name)
            made += [d.id for d in targets]
            once = exactly_once(dataset, targets)
            for run in (exported, imported):
                run["records_per_second"] = size / run["seconds"]
                waited = sum(run["emulator_seconds"].values()) + sum(run["moto_seconds"].values())
                run["function_and_rest_seconds"] = run["seconds"] - waited  # the function's CPU, the HTTP between
            figures[str(size)] = {
                "export": exported,
                "import": imported,
                "exactly_once": once,
                "every_record_once": all(v == 0 for k, v in once.items() if k != "datasets_made")
                and once["datasets_made"] == 1,
            }
    for dataset_id in made:  # the imports' versions hold a million records' worth: let them go
        emulator.datasets.pop(dataset_id, None)
    del emulator.requests[requests_before:]  # the uploads' bodies, 10 MB each
    figures["group_seconds"] = time.monotonic() - started
    return figures
