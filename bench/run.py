"""`make bench`: what users pay for llmobs-actions, beside the function they would otherwise write.

Every figure is the median of several runs, measured in the same run for llmobs-actions and for the
baseline (bench/baseline/: boto3 + datadog-api-client with retries + a plain loop), on the local stack.
Prints a table and writes the same figures to bench/results.json.
"""

from __future__ import annotations

import argparse
import collections
import importlib.metadata
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import boto3
import urllib3.connectionpool

from bench import backups
from bench.events import clone_event
from local.datadog_emulator import DatadogEmulator
from local.lambda_context import LambdaContext
from local.poller import Poller
from local.runtime_api import LambdaRuntime
from local.stack import DATASET_ID, PROJECT_ID, AwsResources, local_stack

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "bench" / "baseline"
RESULTS = ROOT / "bench" / "results.json"
OURS_HANDLER = "llmobs_actions.handler.lambda_handler"
BASELINE_HANDLER = "handler.lambda_handler"


def load_handler(which: str) -> Callable[[dict[str, Any], Any], Any]:
    if which == "ours":
        from llmobs_actions import handler

        handler.processor.cache_clear()
        return handler.lambda_handler
    sys.path.insert(0, str(BASELINE))
    import handler as baseline  # type: ignore[import-not-found]

    return baseline.lambda_handler  # type: ignore[no-any-return]


@contextmanager
def quiet_stdout() -> Iterator[None]:
    """Both functions print (EMF metrics, log lines): keep the table readable."""
    saved = sys.stdout
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    try:
        yield
    finally:
        sys.stdout.close()
        sys.stdout = saved


# --- 1. cold start --------------------------------------------------------------------------------

PROBE = ROOT / "bench" / "probe.py"
# What Lambda sets in an execution environment: with them Powertools' Tracer is on, as deployed.
LAMBDA_ENVIRONMENT = {
    "AWS_LAMBDA_FUNCTION_NAME": "llmobs-actions-bench",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    "LAMBDA_TASK_ROOT": "/var/task",
    "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
}


ByteCode = Literal["all", "none", "deployed"]


def cold_starts(runs: int, byte_code: ByteCode = "all") -> dict[str, dict[str, float]]:
    """Ours and the baseline in turn (A, B, A, B, ...), so that the machine's drift touches both alike.

    As deployed: Lambda's variables set (tracing on), idempotency on. Byte code, read from a scratch cache
    (PYTHONPYCACHEPREFIX) that a first run of each writes, whatever this machine's PYTHONDONTWRITEBYTECODE:
    - "all": for every module, both sides (like for like);
    - "none": for no module, every one compiled from source at each start;
    - "deployed": what each package gives Lambda, where /var/task is read-only so nothing compiled at a
      cold start is kept. Ours ships byte code for all of it (src/Makefile). The naive function's
      `sam build` zip ships none: its handler and what its requirements install compile at each start;
      the runtime's own modules (stdlib, boto3 and its dependencies) come with theirs.
    """
    samples: dict[str, list[dict[str, float]]] = {"ours": [], "baseline": []}
    traced = {k: v for k, v in os.environ.items() if k != "POWERTOOLS_TRACE_DISABLED"} | LAMBDA_ENVIRONMENT
    with tempfile.TemporaryDirectory() as scratch:
        pycache = {which: str(Path(scratch, which)) for which in samples}
        for round_ in range(runs + 1):
            for which, taken in samples.items():
                source = str(ROOT / "src") if which == "ours" else str(BASELINE)
                environment = traced | {"PYTHONPATH": f"{source}{os.pathsep}{ROOT}"}
                environment["PYTHONPYCACHEPREFIX"] = pycache[which]
                if round_ == 0 and byte_code != "none":
                    environment.pop("PYTHONDONTWRITEBYTECODE", None)
                else:
                    environment["PYTHONDONTWRITEBYTECODE"] = "1"
                started = time.time()
                out = subprocess.run(  # noqa: S603 (this interpreter, our probe)
                    [sys.executable, str(PROBE), repr(started), which],
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=ROOT,
                    env=environment,
                ).stdout
                if round_ > 0:
                    taken.append(json.loads(out.strip().splitlines()[-1]))
                elif byte_code == "deployed" and which == "baseline":
                    _forget_byte_code(Path(pycache[which]), [BASELINE, *_installed_by(BASELINE / "requirements.txt")])
    return {
        which: {key: statistics.median(s[key] for s in taken) for key in taken[0]} for which, taken in samples.items()
    }


def _installed_by(requirements: Path) -> list[Path]:
    """Where the modules that `pip install -r requirements` puts in a package live in this interpreter:
    the named distributions and everything they require (extras aside), each top-level module once."""

    def name(requirement: str) -> str:
        match = re.match(r"\s*([A-Za-z0-9._-]+)", requirement)
        return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else ""

    pending = [name(line) for line in requirements.read_text().splitlines() if not line.lstrip().startswith("#")]
    seen: set[str] = set()
    paths: set[Path] = set()
    while pending:
        distribution = pending.pop()
        if not distribution or distribution in seen:
            continue
        seen.add(distribution)
        dist = importlib.metadata.distribution(distribution)
        pending += [name(r) for r in dist.requires or [] if "extra ==" not in r]
        for file in dist.files or []:
            if file.suffix == ".py" and ".." not in file.parts and "bin" not in file.parts:
                top = Path(str(dist.locate_file(file.parts[0])))
                paths.add(top)
    return sorted(paths)


def _forget_byte_code(pycache: Path, sources: list[Path]) -> None:
    """Drops from a PYTHONPYCACHEPREFIX cache what was compiled from `sources` (packages or modules)."""
    for source in sources:
        mirrored = pycache.joinpath(*source.resolve().parts[1:])
        if source.is_dir():
            shutil.rmtree(mirrored, ignore_errors=True)
        else:
            for compiled in mirrored.parent.glob(f"{source.stem}.*.pyc"):
                compiled.unlink()


def top_imports(which: str) -> list[tuple[str, float]]:
    source = str(ROOT / "src") if which == "ours" else str(BASELINE)
    module = "llmobs_actions.handler" if which == "ours" else "handler"
    err = subprocess.run(  # noqa: S603
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": f"{source}{os.pathsep}{ROOT}"},
    ).stderr
    totals: dict[str, float] = {}
    for line in err.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| *(\S+)", line)
        if match:  # a package's outermost import carries its whole cumulative time
            name = match.group(2).split(".")[0]
            totals[name] = max(totals.get(name, 0.0), int(match.group(1)) / 1000)
    for own in (module.split(".")[0], "llmobs_actions", "encodings", "site"):
        totals.pop(own, None)
    return sorted(totals.items(), key=lambda item: -item[1])[:10]


# --- 2 and 3. batch latency, per-message overhead ---------------------------------------------


class _Waiting:
    """Seconds the function spends inside urllib3 requests (Datadog and, through botocore, AWS).

    The local stack's AWS front runs in this process and forwards to moto with urllib3 too: its requests
    (to `moto_port`) are the services' time, not the function's, and counting them would count twice.
    """

    def __init__(self, moto_port: int | None) -> None:
        self.seconds = 0.0
        self._moto_port = moto_port
        self._lock = threading.Lock()

    def timed(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def urlopen(pool: Any, *args: Any, **kwargs: Any) -> Any:
            if pool.port == self._moto_port:
                return original(pool, *args, **kwargs)
            started = time.perf_counter()
            try:
                return original(pool, *args, **kwargs)
            finally:
                with self._lock:
                    self.seconds += time.perf_counter() - started

        return urlopen


def batch_latency(handler: Callable[..., Any], emulator: DatadogEmulator, runs: int, tag: str) -> float:
    emulator.latency_seconds = 0.2
    with quiet_stdout():
        handler(clone_event(10, f"warm-{tag}"), LambdaContext())
        samples = []
        for run in range(runs):
            started = time.perf_counter()
            result = handler(clone_event(10, f"batch-{tag}-{run}"), LambdaContext())
            samples.append(time.perf_counter() - started)
            assert result == {"batchItemFailures": []}, result
    emulator.latency_seconds = 0.0
    return statistics.median(samples) * 1000


def overhead_per_message(which: str, runs: int, moto_port: int | None) -> float:
    """Handler time minus time waiting on HTTP (Datadog and AWS both go through urllib3), per message.

    Records run one at a time here (MAX_WORKERS=1) so that waiting and working add up to the wall time.
    """
    os.environ["MAX_WORKERS"] = "1"
    handler = load_handler(which)
    waiting = _Waiting(moto_port)
    original = urllib3.connectionpool.HTTPConnectionPool.urlopen
    urllib3.connectionpool.HTTPConnectionPool.urlopen = waiting.timed(original)  # type: ignore[method-assign]
    try:
        with quiet_stdout():
            handler(clone_event(10, f"warm-o-{which}"), LambdaContext())
            samples = []
            for run in range(runs):
                waiting.seconds = 0.0
                started = time.perf_counter()
                handler(clone_event(10, f"over-{which}-{run}"), LambdaContext())
                samples.append((time.perf_counter() - started - waiting.seconds) / 10)
    finally:
        urllib3.connectionpool.HTTPConnectionPool.urlopen = original  # type: ignore[method-assign]
        del os.environ["MAX_WORKERS"]
    return statistics.median(samples) * 1000


# --- 4. memory -------------------------------------------------------------------------------


def peak_rss_mb(which: str, aws: AwsResources, batches: int) -> float:
    handler, source = (OURS_HANDLER, ROOT / "src") if which == "ours" else (BASELINE_HANDLER, BASELINE)
    with LambdaRuntime({}, 60, handler=handler, source=source) as runtime:
        for batch in range(batches):
            result = runtime.invoke(clone_event(10, f"mem-{which}-{batch}"))
            assert result == {"batchItemFailures": []}, result
        return backups.vm_hwm_mb(runtime.pid)


# --- 5. throughput at the rate limit ---------------------------------------------------------


def throughput(
    which: str, aws: AwsResources, emulator: DatadogEmulator, messages: int, limit: int, period: int = 10
) -> dict[str, float]:
    """`limit` requests a second, granted as Datadog does: limit x period per calendar-aligned window."""
    tag = which
    emulator.limit_rate(limit * period, period)  # every endpoint family alike
    emulator.latency_seconds = DATADOG_LATENCY_SECONDS  # what Lambda bills is mostly waiting on Datadog
    emulator.requests.clear()
    calls_before = aws.front.calls.copy() if aws.front else collections.Counter()
    # moto's ReceiveMessage slows down with the queue's length (1.7 s a call at 2,000 messages), so the
    # producer keeps a backlog of 60 (a few seconds of work) instead of sending all at once.
    producer = threading.Thread(target=_produce, args=(aws, messages, tag), daemon=True)
    producer.start()
    # Two execution environments, each with its poller: the template's default MaxConcurrency of 2.
    handler, source = (OURS_HANDLER, ROOT / "src") if which == "ours" else (BASELINE_HANDLER, BASELINE)
    runtimes = [LambdaRuntime({}, 60, handler=handler, source=source) for _ in range(2)]
    billed = _Billed()
    pollers = [
        Poller(boto3.client("sqs"), aws.queue_url, aws.queue_arn, billed.timed(r.invoke), batch_size=10)
        for r in runtimes
    ]
    started = time.monotonic()
    budget = messages / limit * 3 + 30

    def drain(poller: Poller) -> None:
        while time.monotonic() - started < budget:
            if poller.run_until_empty(timeout_seconds=budget) and not producer.is_alive():
                return

    with quiet_stdout():
        workers = [threading.Thread(target=drain, args=(poller,)) for poller in pollers]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    elapsed = time.monotonic() - started
    for runtime in runtimes:
        runtime.close()
    emulator.rate_limits.clear()
    emulator.latency_seconds = 0.0
    calls = (aws.front.calls if aws.front else collections.Counter()) - calls_before
    clones = [r for r in emulator.requests if r.path.endswith("/clone")]
    created = {d.name for d in emulator.datasets.values() if d.name.startswith(f"tp-{tag}-")}
    return {
        "seconds": elapsed,
        "actions_per_second": len(created) / elapsed,
        "fraction_of_limit": len(created) / elapsed / limit,
        "throttled_share": sum(1 for r in clones if r.status == 429) / max(1, len(clones)),
        "lost": messages - len({m for p in pollers for m, d in p.deliveries.items() if d.deleted}),
        "dead_lettered": len(aws.dead_letters()),
        "done_twice": len(clones) - sum(1 for r in clones if r.status == 429) - len(created),
        "done_once": len(created),
        "usage": usage(calls, billed, aws),
    }


DATADOG_LATENCY_SECONDS = 0.1  # the emulator's answer time in the throughput run
MEMORY_GB = 0.25  # the template's default FunctionMemorySize, 256 MB
PRICES = json.loads((ROOT / "bench" / "prices.json").read_text())
# The producer's sends are the producer's bill, the same for both functions; everything else is counted.
_PRODUCER_CALLS = ("AmazonSQS.SendMessage", "AmazonSQS.SendMessageBatch")


class _Billed:
    """Lambda's bill for the invocations: each rounded up to the millisecond, as Lambda bills them."""

    def __init__(self) -> None:
        self.invocations = 0
        self.billed_ms = 0
        self._lock = threading.Lock()

    def timed(self, invoke: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def call(event: Any) -> Any:
            started = time.perf_counter()
            try:
                return invoke(event)
            finally:
                with self._lock:
                    self.invocations += 1
                    self.billed_ms += math.ceil((time.perf_counter() - started) * 1000)

        return call


def usage(calls: collections.Counter[str], billed: _Billed, aws: AwsResources) -> dict[str, float]:
    """What AWS bills for one run, in its units."""
    writes = sum(calls[f"DynamoDB_20120810.{op}"] for op in ("PutItem", "UpdateItem", "DeleteItem"))
    reads = sum(calls[f"DynamoDB_20120810.{op}"] for op in ("GetItem", "Query"))
    return {
        "lambda_gb_seconds": billed.billed_ms / 1000 * MEMORY_GB,
        "lambda_requests": billed.invocations,
        # one write request unit per KB of item, rounded up: the largest record decides (none is near 1 KB)
        "dynamodb_write_units": writes * _units_per_write(aws),
        "dynamodb_read_units": reads,  # strongly consistent reads of items under 4 KB: one unit each
        "sqs_requests": sum(n for target, n in calls.items() if target.startswith("AmazonSQS."))
        - sum(calls[target] for target in _PRODUCER_CALLS),
        "secrets_manager_calls": calls["secretsmanager.GetSecretValue"],
        "eventbridge_entries": calls["AWSEvents.PutEvents entries"],  # each under 64 KB: one billed event
    }


def _units_per_write(aws: AwsResources) -> int:
    items = boto3.client("dynamodb").scan(TableName=aws.table_name).get("Items", [])
    largest = max((len(json.dumps(item)) for item in items), default=0)
    return max(1, math.ceil(largest / 1024))


def cost_per_million(usage_: dict[str, float], done_once: float) -> dict[str, float]:
    """Dollars per million actions done once: duplicates and retries are paid for, not counted as done."""
    usd = PRICES["usd"]
    price_of = {
        "Lambda compute": usage_["lambda_gb_seconds"] * usd["lambda_gb_second_arm64"],
        "Lambda requests": usage_["lambda_requests"] * usd["lambda_request"],
        "DynamoDB": usage_["dynamodb_write_units"] * usd["dynamodb_write_request_unit"]
        + usage_["dynamodb_read_units"] * usd["dynamodb_read_request_unit"],
        "SQS": usage_["sqs_requests"] * usd["sqs_request"],
        "Secrets Manager": usage_["secrets_manager_calls"] * usd["secrets_manager_api_call"],
        "EventBridge": usage_["eventbridge_entries"] * usd["eventbridge_event_entry"],
    }
    per_million = {line: dollars / max(1.0, done_once) * 1_000_000 for line, dollars in price_of.items()}
    return per_million | {"total": sum(per_million.values())}


def _produce(aws: AwsResources, messages: int, tag: str, backlog: int = 60) -> None:
    sqs = boto3.client("sqs")  # a client of its own: boto3 clients are thread-safe, making them is not
    sent = 0
    while sent < messages:
        waiting = int(
            sqs.get_queue_attributes(QueueUrl=aws.queue_url, AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"
            ]["ApproximateNumberOfMessages"]
        )
        if waiting >= backlog:
            time.sleep(0.2)
            continue
        count = min(10, messages - sent)
        sqs.send_message_batch(
            QueueUrl=aws.queue_url,
            Entries=[
                {
                    "Id": str(n),
                    "MessageBody": json.dumps(
                        {
                            "action": "clone_dataset",
                            "project_id": PROJECT_ID,
                            "dataset_id": DATASET_ID,
                            "name": f"tp-{tag}-{sent + n}",
                        }
                    ),
                }
                for n in range(count)
            ],
        )
        sent += count


# --- 5b. mixed endpoints, each at its own rate limit ----------------------------------------------


def mixed_limits(
    aws: AwsResources,
    emulator: DatadogEmulator,
    messages: int,
    per_second: int,
    period: int = 2,
    source: Path = ROOT / "src",
    sandboxes: int = 2,
) -> dict[str, float]:
    """Clones and deletes interleaved, each endpoint family limited to `per_second` on its own (Datadog's
    limits differ per endpoint): how many calls Datadog refuses, and how close both limits run to full.

    `source` is the function's code: pass an older checkout's src/ to measure it on the same stage.
    """
    tag = f"mx{int(time.time())}"
    for family in ("datasets", "experiments"):
        emulator.limit_rate(per_second * period, period, family=family)
    experiments = [emulator.add_experiment(PROJECT_ID, DATASET_ID, f"{tag}-e{n}") for n in range(messages // 2)]
    emulator.requests.clear()
    sqs = boto3.client("sqs")
    bodies = []
    for n in range(messages // 2):
        bodies.append(
            {"action": "clone_dataset", "project_id": PROJECT_ID, "dataset_id": DATASET_ID, "name": f"{tag}-{n}"}
        )
        bodies.append({"action": "delete_experiments", "experiment_ids": [experiments[n]]})
    for start in range(0, len(bodies), 10):
        sqs.send_message_batch(
            QueueUrl=aws.queue_url,
            Entries=[{"Id": str(n), "MessageBody": json.dumps(b)} for n, b in enumerate(bodies[start : start + 10])],
        )
    runtimes = [LambdaRuntime({}, 60, handler=OURS_HANDLER, source=source) for _ in range(sandboxes)]
    pollers = [Poller(boto3.client("sqs"), aws.queue_url, aws.queue_arn, r.invoke, batch_size=10) for r in runtimes]
    started = time.monotonic()
    with quiet_stdout():
        workers = [threading.Thread(target=p.run_until_empty, kwargs={"timeout_seconds": 600}) for p in pollers]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    elapsed = time.monotonic() - started
    for runtime in runtimes:
        runtime.close()
    emulator.rate_limits.clear()
    calls = [r for r in emulator.requests if r.path.endswith(("/clone", "/experiments/delete"))]
    done = sum(1 for d in emulator.datasets.values() if d.name.startswith(f"{tag}-")) + sum(
        1 for e in experiments if emulator.experiments[e].deleted_at
    )
    return {
        "seconds": elapsed,
        "refused_share": sum(1 for r in calls if r.status == 429) / max(1, len(calls)),
        "fraction_of_limits": done / elapsed / (2 * per_second),
        "done": done,
        "dead_lettered": len(aws.dead_letters()),
    }


# --- 6. package size ---------------------------------------------------------------------------


def _runs(python: str) -> bool:
    return subprocess.run([python, "-V"], capture_output=True, check=False).returncode == 0  # noqa: S603


def _pythons_313() -> list[str]:
    return [
        p
        for p in (shutil.which("python3.13"), *map(str, Path.home().glob(".pyenv/versions/3.13*/bin/python3.13")))
        if p
    ]


def package_size_mb(which: str, work: Path) -> float:
    """What `sam build` packages for python3.13 on arm64, zipped. Ours: src/Makefile's build, byte code
    and all (python3.13 compiles it if installed, else this interpreter: much the same size). The
    baseline: what SAM's Python builder packages, its requirements' wheels and its handler, no byte code."""
    target = work / "package"
    if which == "ours":
        python = next((p for p in _pythons_313() if _runs(p)), sys.executable)
        arguments = [f"ARTIFACTS_DIR={target}", f"PYTHON={python}"]
        subprocess.run(["make", "--quiet", "-C", str(ROOT / "src"), "build-ActionsFunction", *arguments], check=True)  # noqa: S603, S607
    else:
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
        platform = ["--platform", "manylinux2014_aarch64", "--implementation", "cp", "--python-version", "3.13"]
        requirements = ["--only-binary=:all:", "-r", str(BASELINE / "requirements.txt")]
        subprocess.run([*pip, *platform, "--target", str(target), *requirements], check=True)  # noqa: S603
        shutil.copy(BASELINE / "handler.py", target)
    archive = work / "package.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in target.rglob("*"):
            if path.is_file():
                zipped.write(path, path.relative_to(target))
    return archive.stat().st_size / 1_000_000


# --- the table -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer runs and messages (a smoke test, not figures)")
    parser.add_argument("--skip-package", action="store_true", help="skip the package-size figure (needs PyPI)")
    parser.add_argument(
        "--only",
        choices=["backups"],
        help="only this group: its rows printed, its figures replaced in bench/results.json (the rest kept)",
    )
    args = parser.parse_args(argv)
    if args.only == "backups":
        return only_backups(args.quick)
    runs, batches, messages, limit = (2, 5, 100, 20) if args.quick else (5, 100, 2000, 20)
    results: dict[str, Any] = {"runs": runs}
    with local_stack(visibility_timeout=2, moto_in_own_process=True) as (aws, emulator):
        os.environ["RETRY_BASE_DELAY_SECONDS"] = "1"
        os.environ["POWERTOOLS_LOG_LEVEL"] = "CRITICAL"  # the figures, not the functions' logs
        _as_deployed(aws)
        for which, figures in cold_starts(max(runs, 9), byte_code="deployed").items():
            results.setdefault(which, {})["cold_start"] = figures
        for which, figures in cold_starts(max(runs, 5), byte_code="all").items():
            results[which]["cold_start_all_byte_code"] = figures
        for which, figures in cold_starts(max(runs, 5), byte_code="none").items():
            results[which]["cold_start_no_byte_code"] = figures
            results[which]["top_imports"] = top_imports(which)
        handlers = {"ours": load_handler("ours"), "baseline": load_handler("baseline")}
        moto_port = urllib3.util.parse_url(aws.front.moto_endpoint).port if aws.front else None
        for which, handler in handlers.items():
            results[which]["batch_of_10_ms"] = batch_latency(handler, emulator, runs, which)
        for which in handlers:
            results[which]["overhead_per_message_ms"] = overhead_per_message(which, runs, moto_port)
        table = os.environ.pop("IDEMPOTENCY_TABLE")  # our own code's share, without the two DynamoDB calls
        results["ours"]["overhead_without_idempotency_ms"] = overhead_per_message("ours", runs, moto_port)
        # moto serves DynamoDB writes one at a time (~7 ms each): a batch's 20 idempotency writes queue up
        # there, where DynamoDB serves the ten records' writes side by side.
        results["ours"]["batch_of_10_without_idempotency_ms"] = batch_latency(
            load_handler("ours"), emulator, runs, "noid"
        )
        os.environ["IDEMPOTENCY_TABLE"] = table
        handlers["ours"] = load_handler("ours")  # rebuilt with the default MAX_WORKERS
        for which in handlers:
            results[which]["peak_rss_mb"] = peak_rss_mb(which, aws, batches)
        for which in handlers:
            results[which]["throughput"] = throughput(which, aws, emulator, messages, limit)
        results["ours"]["mixed_limits"] = mixed_limits(aws, emulator, messages // 10, per_second=5)
        results["ours"]["backups"] = backups.backups(aws, emulator, OURS_HANDLER, ROOT / "src", _sizes(args.quick))
    if not args.skip_package:
        with tempfile.TemporaryDirectory() as work:
            for which in ("ours", "baseline"):
                results[which]["package_mb"] = package_size_mb(which, Path(work) / which)
    results["settings"] = {
        "batches_for_memory": batches,
        "throughput_messages": messages,
        "rate_limit_per_second": limit,
        "emulator_latency_ms": 200,
        "throughput_datadog_latency_ms": DATADOG_LATENCY_SECONDS * 1000,
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    return 0


def _sizes(quick: bool) -> tuple[int, ...]:
    return backups.QUICK_SIZES if quick else backups.SIZES


def only_backups(quick: bool) -> int:
    """The backups group alone, on a stack of its own; bench/results.json keeps every other figure it had."""
    with local_stack(visibility_timeout=2, moto_in_own_process=True) as (aws, emulator):
        os.environ["RETRY_BASE_DELAY_SECONDS"] = "1"
        os.environ["POWERTOOLS_LOG_LEVEL"] = "CRITICAL"
        _as_deployed(aws)
        figures = backups.backups(aws, emulator, OURS_HANDLER, ROOT / "src", _sizes(quick))
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.setdefault("ours", {})["backups"] = figures
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(TABLE_HEADER)
    _print_rows(backup_rows(figures))
    print_backup_notes(figures)
    return 0


def _as_deployed(aws: AwsResources) -> None:
    """No rule listens to the result events, as after `sam deploy`: the local stack's (a producer's, for the
    tests) would measure moto, whose delivery to an SQS target costs ~36 ms an entry and grows with the
    queue's length (10 entries: 359 ms with 0, 1,259 ms with 3,000 waiting; 10 ms with no rule)."""
    if aws.results_queue_url is None:
        return
    events, rule = boto3.client("events"), f"{aws.values.queue_name}-results"
    bus = aws.values.function_environment["RESULT_EVENT_BUS"]
    events.remove_targets(Rule=rule, EventBusName=bus, Ids=["results"])
    events.delete_rule(Name=rule, EventBusName=bus)


def print_table(results: dict[str, Any]) -> None:
    ours, base = results["ours"], results["baseline"]
    rows = [
        (
            "cold start as deployed: import + settings (ms)",
            ours["cold_start"]["ready_ms"],
            base["cold_start"]["ready_ms"],
            "<= 0.75 x baseline",
            ours["cold_start"]["ready_ms"] <= 0.75 * base["cold_start"]["ready_ms"],
        ),
        (
            "cold start as deployed: first message done (ms)",
            ours["cold_start"]["first_message_ms"],
            base["cold_start"]["first_message_ms"],
            "<= 1.0 x baseline",
            ours["cold_start"]["first_message_ms"] <= base["cold_start"]["first_message_ms"],
        ),
        (
            "  like for like: byte code for both (ms)",
            ours["cold_start_all_byte_code"]["first_message_ms"],
            base["cold_start_all_byte_code"]["first_message_ms"],
            "",
            None,
        ),
        (
            "  like for like: no byte code for either (ms)",
            ours["cold_start_no_byte_code"]["first_message_ms"],
            base["cold_start_no_byte_code"]["first_message_ms"],
            "",
            None,
        ),
        (
            "batch of 10 clones, 200 ms Datadog (ms)",
            ours["batch_of_10_ms"],
            base["batch_of_10_ms"],
            "<= 250 (1.25 round trips)",
            ours["batch_of_10_ms"] <= 250,
        ),
        (
            "  the same, idempotency off (ms)",
            ours["batch_of_10_without_idempotency_ms"],
            base["batch_of_10_ms"],
            "the writes moto serves one by one",
            None,
        ),
        (
            "overhead per message, warm (ms)",
            ours["overhead_per_message_ms"],
            base["overhead_per_message_ms"],
            "< 2",
            ours["overhead_per_message_ms"] < 2,
        ),
        (
            "  the same, idempotency off (ms)",
            ours["overhead_without_idempotency_ms"],
            base["overhead_per_message_ms"],
            "our own code's share",
            None,
        ),
        (
            f"peak RSS, {results['settings']['batches_for_memory']} batches of 10 (MB)",
            ours["peak_rss_mb"],
            base["peak_rss_mb"],
            "< 100",
            ours["peak_rss_mb"] < 100,
        ),
        (
            f"throughput at {results['settings']['rate_limit_per_second']}/s (share of limit)",
            ours["throughput"]["fraction_of_limit"],
            base["throughput"]["fraction_of_limit"],
            ">= 0.9, none lost",
            ours["throughput"]["fraction_of_limit"] >= 0.9
            and ours["throughput"]["lost"] == 0
            and ours["throughput"]["dead_lettered"] == 0,
        ),
    ]
    if "package_mb" in ours:
        rows.append(("package, zipped (MB)", ours["package_mb"], base["package_mb"], "", None))
    ours_cost = cost_per_million(ours["throughput"]["usage"], ours["throughput"]["done_once"])
    base_cost = cost_per_million(base["throughput"]["usage"], base["throughput"]["done_once"])
    for line in ours_cost:
        total = line == "total"
        rows.append(
            (
                f"{'cost per million actions, USD' if total else '  ' + line}",
                ours_cost[line],
                base_cost[line],
                "<= baseline" if total else "",
                ours_cost[line] <= base_cost[line] if total else None,
            )
        )
    if "backups" in ours:
        rows += backup_rows(ours["backups"])
    print(TABLE_HEADER)
    _print_rows(rows)
    dominant = max((line for line in ours_cost if line != "total"), key=lambda line: ours_cost[line])
    print(
        f"\ncost: us-east-1 on-demand prices of {PRICES['as_of']} (bench/prices.json), counted in the throughput run "
        f"(Datadog answering in {DATADOG_LATENCY_SECONDS * 1000:.0f} ms); ours is mostly {dominant} "
        f"({ours_cost[dominant] / ours_cost['total']:.0%})"
    )
    mixed = ours["mixed_limits"]
    print(
        f"\nours, clones and deletes each at its own limit: {mixed['refused_share']:.1%} of calls refused, "
        f"{mixed['fraction_of_limits']:.2f} of both limits used, {mixed['done']:.0f} done in "
        f"{mixed['seconds']:.0f} s, dead-lettered {mixed['dead_lettered']:.0f}"
    )
    for which in ("ours", "baseline"):
        tp = results[which]["throughput"]
        print(
            f"\n{which}: throughput {tp['actions_per_second']:.1f} actions/s in {tp['seconds']:.0f} s, "
            f"{tp['throttled_share']:.0%} of clone calls throttled, lost {tp['lost']}, "
            f"dead-lettered {tp['dead_lettered']}, done twice {tp['done_twice']}"
        )
        print(f"{which}: top imports (ms): " + ", ".join(f"{n} {ms:.0f}" for n, ms in results[which]["top_imports"]))
    if "backups" in ours:
        print_backup_notes(ours["backups"])


TABLE_HEADER = f"{'figure':48} {'llmobs-actions':>15} {'baseline':>10} {'ratio':>7}  goal"
Row = tuple[str, float, float | None, str, bool | None]


def _print_rows(rows: list[Row]) -> None:
    """A row without a baseline (the baseline has no such action) leaves its baseline and ratio blank."""
    for label, mine, theirs, goal, met in rows:
        verdict = "" if met is None else ("met" if met else "NOT MET")
        if theirs is None:
            print(f"{label:48} {mine:15.2f} {'':>10} {'':>7}  {goal} {verdict}")
        else:
            print(f"{label:48} {mine:15.2f} {theirs:10.2f} {mine / theirs if theirs else 0:7.2f}  {goal} {verdict}")


def backup_rows(figures: dict[str, Any]) -> list[Row]:
    """Per size: export and import records/s (met: done within the default timeout, continuing if needed, every
    record once), their invocations and peak RSS; then how far the largest size's peaks are from the smallest's."""
    sizes = sorted(int(key) for key in figures if key.isdigit())
    timeout, memory = figures["function_timeout_seconds"], figures["function_memory_mb"]
    rows: list[Row] = []
    for size in sizes:
        at = figures[str(size)]
        tag = f"{size // 1000}k" if size >= 1000 else str(size)
        for action in ("export", "import"):
            run = at[action]
            done = (
                run["finished"]
                and run["within_chain_limit"]
                and not run["function_errors"]
                and not run["dead_lettered"]
                and (action == "export" or at["every_record_once"])  # an export's count is in `finished`
            )
            rows += [
                (
                    f"{action} {tag} records of 2 KB (records/s)",
                    run["records_per_second"],
                    None,
                    f"within the default timeout ({timeout} s), continuing if needed:",
                    done,
                ),
                ("  invocations (1 + continuations)", run["invocations"], None, "", None),
                (
                    "  peak RSS (MB)",
                    run["peak_rss_mb"],
                    None,
                    f"< {memory} (FunctionMemorySize)",
                    run["peak_rss_mb"] < memory,
                ),
            ]
        once = at["exactly_once"]
        wrong = once["missing"] + once["duplicated"] + once["changed"] + once["unknown"]
        rows.append(
            (
                f"  {tag}: records missing, twice or changed",
                wrong,
                None,
                "0: every record once, as the source",
                at["every_record_once"],
            )
        )
    # Flat compares sizes that each fill an import chunk (5,000 records): a smaller one (--quick's 1,000) holds less
    # at a time whatever the code, and proves nothing.
    if len(sizes) > 1 and sizes[0] >= 10_000:
        small, large = figures[str(sizes[0])], figures[str(sizes[-1])]
        for action in ("export", "import"):
            grown = large[action]["peak_rss_mb"] - small[action]["peak_rss_mb"]
            rows.append(
                (
                    f"{action} peak RSS, {sizes[-1] // 1000}k minus {sizes[0] // 1000}k (MB)",
                    grown,
                    None,
                    f"memory flat: {sizes[-1] // 1000}k peak within +{backups.FLAT_MB} MB of {sizes[0] // 1000}k",
                    grown <= backups.FLAT_MB,
                )
            )
    return rows


def print_backup_notes(figures: dict[str, Any]) -> None:
    """Where each run's time went: the emulator's own work and moto's (both in the bench's process), the rest
    the function's (its CPU, and the HTTP between)."""
    print(
        f"\nbackups: records of {figures['record_bytes']} B of context, gzip ratio {figures['gzip_ratio']:.1f}x; "
        f"group took {figures['group_seconds']:.0f} s"
    )
    for size in sorted(int(key) for key in figures if key.isdigit()):
        for action in ("export", "import"):
            run = figures[str(size)][action]
            emulator, moto = sum(run["emulator_seconds"].values()), sum(run["moto_seconds"].values())
            rest = run["function_and_rest_seconds"]
            print(
                f"  {action} {size}: {run['seconds']:.1f} s: emulator {emulator:.1f} s "
                f"({', '.join(f'{k} {v:.1f}' for k, v in sorted(run['emulator_seconds'].items()))}), "
                f"moto {moto:.1f} s (S3 {run['moto_seconds'].get('s3', 0.0):.1f}), "
                f"function and the rest {rest:.1f} s; "
                f"{run['invocations']} invocation(s), {run['retries']} retried, {run['function_errors']} errors"
            )


if __name__ == "__main__":
    sys.exit(main())
