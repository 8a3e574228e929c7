"""Helpers shared by the framework tests."""

from __future__ import annotations

import asyncio
from typing import Any


def run(coro: Any, timeout: float = 20.0) -> Any:
    """Run one async client scenario with an upper bound, so a hang fails instead of blocking."""
    return asyncio.run(asyncio.wait_for(coro, timeout))
