"""Builds the optional C accelerator; everything else is in pyproject.toml.

``optional=True``: without a C compiler the install still succeeds and the pure-Python
masking in ``krandog_asgi/websocket/frames.py`` is used.
"""

from __future__ import annotations

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "krandog_asgi.websocket._speedups",
            ["krandog_asgi/websocket/_speedups.c"],
            optional=True,
            extra_compile_args=["-O3"],
        )
    ]
)
