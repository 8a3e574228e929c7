"""Turning APP into an ASGI 3 callable: import ``module:attr``, call a factory, wrap a krandog
handler. Each worker process does this itself, after spawn; the parent of ``--workers`` does it
once beforehand so that a bad APP fails there, once.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import sys
from typing import Any, Literal, Protocol

from krandog_asgi.asgi_types import ASGIApp

__all__ = [
    "AppOptions",
    "ImportFromStringError",
    "InterfaceMode",
    "import_from_string",
    "load_app",
    "looks_like_factory",
    "looks_like_krandog_handler",
]

logger = logging.getLogger("krandog_asgi.error")

InterfaceMode = Literal["auto", "asgi", "krandog"]


class ImportFromStringError(Exception):
    """The APP string could not be resolved to an object; the message is meant for the user."""


class AppOptions(Protocol):
    """What loading reads from ``Config`` (a Protocol, so that ``config`` can import this
    module without an import cycle)."""

    @property
    def app(self) -> object: ...
    @property
    def app_dir(self) -> str: ...
    @property
    def factory(self) -> bool: ...
    @property
    def interface(self) -> InterfaceMode: ...
    @property
    def handler_threads(self) -> bool: ...


def import_from_string(import_str: str) -> Any:
    """Resolve ``module:attr`` (``attr`` may be dotted) to an object."""
    module_str, _, attrs_str = import_str.partition(":")
    if not module_str or not attrs_str:
        raise ImportFromStringError(
            f'Import string "{import_str}" must be in format "<module>:<attribute>".'
        )
    try:
        module = importlib.import_module(module_str)
    except ModuleNotFoundError as exc:
        if exc.name != module_str and not module_str.startswith(f"{exc.name}."):
            raise  # the module exists but one of its own imports failed
        raise ImportFromStringError(f'Could not import module "{module_str}".') from None
    instance: Any = module
    try:
        for attr in attrs_str.split("."):
            instance = getattr(instance, attr)
    except AttributeError:
        raise ImportFromStringError(
            f'Attribute "{attrs_str}" not found in module "{module_str}".'
        ) from None
    return instance


def load_app(options: AppOptions) -> ASGIApp:
    """Turn ``options.app`` into an ASGI 3 callable: import, call a factory, wrap a handler."""
    app: Any = options.app
    if isinstance(app, str):
        if options.app_dir and options.app_dir not in sys.path:
            sys.path.insert(0, options.app_dir)
        app = import_from_string(app)
    if options.factory:
        if not callable(app):
            raise ImportFromStringError("--factory was given but the app is not callable.")
        app = app()
    elif options.interface == "auto" and looks_like_factory(app):
        logger.warning(
            "ASGI app factory detected (a function without arguments). Using it, but "
            "please consider setting the --factory flag explicitly."
        )
        app = app()
    if not callable(app):
        raise ImportFromStringError(f"The app {app!r} is not callable.")
    interface = options.interface
    if interface == "auto":
        interface = "krandog" if looks_like_krandog_handler(app) else "asgi"
    if interface == "krandog":
        from krandog_asgi.compat import is_krandog_app, krandog_app

        if not is_krandog_app(app):
            app = krandog_app(app, threads=options.handler_threads)
    result: ASGIApp = app
    return result


def looks_like_krandog_handler(app: Any) -> bool:
    """A krandog handler takes one positional argument; an ASGI 3 app takes three."""
    from krandog_asgi.compat import is_krandog_app

    if is_krandog_app(app):
        return False
    target = app
    if not (inspect.isfunction(target) or inspect.ismethod(target)):
        if inspect.isclass(app) or not callable(app):
            return False
        target = app.__call__
    return _required_positional(target) == 1


def looks_like_factory(app: Any) -> bool:
    """A plain function that takes no argument cannot be an ASGI app or a handler: it is an app
    factory given without ``--factory`` (uvicorn calls it too, with a warning)."""
    if not inspect.isfunction(app) or inspect.iscoroutinefunction(app):
        return False
    try:
        return not inspect.signature(app).parameters
    except (TypeError, ValueError):
        return False


def _required_positional(target: Any) -> int | None:
    """How many positional arguments ``target`` requires; None when it takes ``*args`` or its
    signature cannot be read."""
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in sig.parameters.values()):
        return None
    return sum(
        1
        for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    )
