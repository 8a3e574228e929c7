"""Placeholder until the krandog handler adapter lands (issue 4)."""

from __future__ import annotations

from typing import Any


def is_krandog_app(app: Any) -> bool:
    return False


def krandog_app(handler: Any, *, threads: bool = False) -> Any:
    raise NotImplementedError
