"""Importing this module fails the way a missing dependency does."""

from __future__ import annotations

import not_a_real_dependency_xyz  # noqa: F401

app = None
