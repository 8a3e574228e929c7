#!/usr/bin/env python3
"""atheris target: the sans-I/O WebSocket core (``Connection.receive_data``).

Each input is decoded by ``tests.support.fuzzing.frame_input`` (side, deflate and read
boundaries from its first bytes) and must satisfy ``check_frame_stream``: the same events
whole and cut, only data/ping/pong and one close or failure with 1002/1007/1009, never another
exception. Run from the repository root (see fuzz/README.md):

    python fuzz/frame_parser.py -max_total_time=60 fuzz/corpus/frames
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports(include=["krandog_asgi"]):
    from tests.support.fuzzing import frame_input


def main() -> None:
    atheris.Setup(sys.argv, frame_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
