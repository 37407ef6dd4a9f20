"""moto, answering as it does, without the work it repeats on every request.

Profiling the test suite (py-spy over `make test`) put a third of its CPU in moto, most of it in three places
where moto recomputes on every request what cannot have changed since the last one:

- EventBridge: every event delivered to a target builds eight JSONPath parsers (jsonpath_ng's, a PLY parser
  each) for its default input template. The parsed expressions are pure: parse each text once.
- the server: every request lists moto's own package folder, to see whether the host names a service.
  The folder does not change while the server runs: list it once.
- SQS: every message a ReceiveMessage looks at reads the queue's retention period through
  get_queue_attributes, which computes every attribute, the message counts included (each a pass over the
  queue): a receive on a queue of n messages costs n^2. Read the one attribute.

Each replacement returns what moto's own code returns; only the repeated work goes.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

_applied = False


def apply() -> None:
    """Install the three replacements (once per process)."""
    global _applied
    if _applied:
        return
    import jsonpath_ng.ext
    import moto.backends
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=256)(jsonpath_ng.ext.parse)
    modules = tuple(moto.backends.list_of_moto_modules())
    moto.backends.list_of_moto_modules = lambda: modules

    def is_message_valid_based_on_retention_period(self: SQSBackend, queue_name: str, message: Any) -> bool:
        retention_period = int(getattr(self.get_queue(queue_name), "message_retention_period"))  # noqa: B009
        return bool(retention_period + message.sent_timestamp / 1000 > unix_time())

    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]
    _applied = True


if __name__ == "__main__":  # `python -m local.moto_speedups -H 127.0.0.1 -p PORT`: moto's server, sped up
    from moto.server import main

    apply()
    main(sys.argv[1:])
