"""One cold start in a fresh interpreter: import the handler, then one one-message batch; prints the times.

Nothing but the function under test and the standard library is imported before the batch is done, so
that the figures are the function's own (argv: the parent's time.time() at launch, "ours" or "baseline").
"""

import json
import os
import sys
import time

start, which = float(sys.argv[1]), sys.argv[2]
if which == "ours":
    import llmobs_actions.handler as module
    from llmobs_actions.settings import Settings

    Settings.from_environ()
else:
    import handler as module  # type: ignore[import-not-found]
ready = time.time()

from bench.events import clone_event  # noqa: E402 (after the clock: the bench's own, not the function's)
from local.lambda_context import LambdaContext  # noqa: E402

sys.stdout = open(os.devnull, "w")  # noqa: SIM115
result = module.lambda_handler(clone_event(1, f"cold-{which}-{ready}"), LambdaContext())
done = time.time()
sys.stdout = sys.__stdout__
assert result == {"batchItemFailures": []}, result
print(json.dumps({"ready_ms": (ready - start) * 1000, "first_message_ms": (done - start) * 1000}))
