#!/usr/bin/env python3
"""atheris target: the HTTP request path (``HTTPProtocol.data_received``, in memory).

Each input is decoded by ``tests.support.fuzzing.http_input`` (read boundaries from its first
bytes) and served by one ``HTTPProtocol`` on a ``FakeTransport``; ``check_http_stream`` must
hold: served (200/101) or one 4xx/501/505 and the connection closes, no 500, no exception, no
error log line, no task left. Upgrade requests go on into ``ws_protocol``. Run from the
repository root (see fuzz/README.md):

    python fuzz/http_request.py -max_total_time=60 fuzz/corpus/http
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports(include=["krandog_asgi"]):
    from tests.support.fuzzing import http_input

LOOP = asyncio.new_event_loop()  # one loop for every input: a new one per input costs more


def one_input(data: bytes) -> None:
    http_input(data, LOOP)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
