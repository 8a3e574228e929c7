"""Builds the optional C accelerators; everything else is in pyproject.toml.

``optional=True``: without a C compiler the install still succeeds and the pure-Python code
is used (masking and parsing in ``krandog_asgi/websocket/frames.py``, the request scope in
``krandog_asgi/http/request_head.py``).
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
        ),
        Extension(
            "krandog_asgi.http._speedups",
            ["krandog_asgi/http/_speedups.c"],
            optional=True,
            extra_compile_args=["-O3"],
        ),
    ]
)
