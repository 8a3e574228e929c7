"""Logging setup through the standard ``logging`` module: ``krandog_asgi.error`` and ``.access``."""

from __future__ import annotations

import json
import logging
import logging.config
import os
import sys
from typing import Any

__all__ = ["LOG_LEVELS", "configure_logging", "is_default_handler"]

LOG_LEVELS = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": 5,
}


def is_default_handler(handler: logging.Handler) -> bool:
    """Whether ``configure_logging`` installed ``handler`` (and may replace it)."""
    return getattr(handler, "_krandog", False) is True


class _Formatter(logging.Formatter):
    """``INFO:     message``, coloured on a terminal, like the servers users come from."""

    COLORS = {
        logging.DEBUG: "\x1b[36m",
        logging.INFO: "\x1b[32m",
        logging.WARNING: "\x1b[33m",
        logging.ERROR: "\x1b[31m",
        logging.CRITICAL: "\x1b[1;31m",
    }

    def __init__(self, use_colors: bool) -> None:
        super().__init__("%(levelprefix)s %(message)s")
        self.use_colors = use_colors

    def formatMessage(self, record: logging.LogRecord) -> str:
        name = record.levelname
        pad = " " * max(0, 8 - len(name))
        if self.use_colors:
            color = self.COLORS.get(record.levelno, "")
            name = f"{color}{name}\x1b[0m"
        record.__dict__["levelprefix"] = f"{name}:{pad}"
        return super().formatMessage(record)


def configure_logging(
    log_level: str | int | None = "info",
    access_log: bool = True,
    use_colors: bool | None = None,
    log_config: dict[str, Any] | str | None = None,
) -> None:
    logging.addLevelName(5, "TRACE")
    if log_config is not None:
        if isinstance(log_config, dict):
            logging.config.dictConfig(log_config)
        elif log_config.endswith(".json"):
            with open(log_config) as fh:
                logging.config.dictConfig(json.load(fh))
        elif log_config.endswith((".yaml", ".yml")):
            try:
                import yaml  # type: ignore[import-untyped]
            except ImportError:
                raise ImportError(
                    "a YAML logging config needs PyYAML: pip install 'krandog-asgi[yaml]'"
                ) from None
            with open(log_config) as fh:
                logging.config.dictConfig(yaml.safe_load(fh))
        else:
            logging.config.fileConfig(log_config, disable_existing_loggers=False)
    else:
        if use_colors is None:
            use_colors = sys.stderr.isatty() and not os.environ.get("NO_COLOR")
        for name, stream in (
            ("krandog_asgi.error", sys.stderr),
            ("krandog_asgi.access", sys.stdout),
        ):
            log = logging.getLogger(name)
            for handler in list(log.handlers):
                if is_default_handler(handler):
                    log.removeHandler(handler)
            handler = logging.StreamHandler(stream)
            handler._krandog = True  # type: ignore[attr-defined]
            handler.setFormatter(_Formatter(bool(use_colors)))
            log.addHandler(handler)
            log.propagate = False
    if log_level is not None:
        level = LOG_LEVELS[log_level.lower()] if isinstance(log_level, str) else log_level
        logging.getLogger("krandog_asgi").setLevel(level)
        logging.getLogger("krandog_asgi.error").setLevel(level)
        logging.getLogger("krandog_asgi.access").setLevel(level)
    if not access_log:
        access = logging.getLogger("krandog_asgi.access")
        access.handlers = []
        access.propagate = False
