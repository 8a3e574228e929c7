"""Access-log lines written in batches while logging is set up the way ``configure_logging``
leaves it by default.

Through ``logging`` an access line costs more than the request it records (a ``LogRecord``,
the caller lookup, the handler's lock, formatting, and a ``write`` system call per line, as
``StreamHandler`` flushes every record): measured about 20 µs of server CPU per request
(bench/README.md, "Access log"). While the access logger still has only our own handler, with
our own formatter, no filters, and nothing else attached, the same text is rendered here and
written once per loop pass. Each write stays within ``PIPE_BUF`` and ends with a whole line, so
the lines of several workers sharing a pipe never interleave inside a line, as with one write
per line. Any other setup (``--log-config``, a handler or filter an app added) gets every
line through ``logging`` unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import select
from typing import TextIO

from krandog_asgi.process.logs import is_default_handler

__all__ = ["AccessLines"]

access_logger = logging.getLogger("krandog_asgi.access")

# Bytes a write to a pipe is atomic up to (POSIX: at least 512; 4096 on Linux).
BATCH_LIMIT = getattr(select, "PIPE_BUF", 512)


class AccessLines:
    """The access lines of one worker's loop pass, waiting for one write."""

    __slots__ = ("formatter", "handler", "lines", "loop", "prefix", "size")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, handler: logging.StreamHandler[TextIO]
    ) -> None:
        self.loop = loop
        self.handler = handler
        self.formatter = handler.formatter
        # What the formatter puts before a message ("INFO:     ", coloured or not).
        self.prefix = handler.format(
            logging.makeLogRecord({"levelno": logging.INFO, "levelname": "INFO"})
        )
        self.lines: list[str] = []
        self.size = 0

    @classmethod
    def for_default_setup(cls, loop: asyncio.AbstractEventLoop) -> AccessLines | None:
        """One for this loop if the access logger is set up as ``configure_logging`` does by
        default, else None (every line then goes through ``logging``)."""
        handlers = access_logger.handlers
        if len(handlers) != 1 or not is_default_handler(handlers[0]):
            return None
        handler = handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        return cls(loop, handler)

    def add(self, fmt: str, args: tuple[object, ...]) -> bool:
        """Batch the line ``fmt % args``; False, doing nothing, once ``logging`` must see it:
        our handler is no longer the only way out, or no longer as we set it up."""
        handlers = access_logger.handlers
        handler = self.handler
        if not (
            len(handlers) == 1
            and handlers[0] is handler
            and handler.formatter is self.formatter
            and not handler.filters
            and not access_logger.filters
            and not access_logger.disabled
            and handler.level <= logging.INFO
            and access_logger.isEnabledFor(logging.INFO)
        ):
            return False
        line = self.prefix + fmt % args + "\n"
        # Bytes once encoded: a character is one in ASCII, at most four in UTF-8.
        size = len(line) if line.isascii() else 4 * len(line)
        if not self.lines:
            self.loop.call_soon(self.flush)
        elif self.size + size > BATCH_LIMIT:
            self.flush()  # (the callback then writes the lines from this one on)
        self.lines.append(line)
        self.size += size
        return True

    def flush(self) -> None:
        lines = self.lines
        if not lines:
            return
        self.lines = []
        self.size = 0
        handler = self.handler
        handler.acquire()
        try:
            stream = handler.stream
            stream.write("".join(lines))
            stream.flush()
        except Exception:  # a closed or broken stdout: reported as logging reports it
            handler.handleError(logging.makeLogRecord({"msg": "".join(lines)}))
        finally:
            handler.release()
