"""``process.loader`` in memory: APP strings, factories, krandog handlers, and the one line a
load failure becomes in the log (``test_cli_process.py`` checks that line in a real process)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from krandog_asgi.compat import KrandogApp, krandog_app
from krandog_asgi.config import Config
from krandog_asgi.process.loader import (
    ImportFromStringError,
    import_from_string,
    load_app,
    looks_like_krandog_handler,
)
from krandog_asgi.server import Server

_names = count()


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    """Write ``source`` as a fresh module on a private ``sys.path`` entry; returns its name."""
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])

    def write(source: str) -> str:
        name = f"loader_target_{next(_names)}"
        (tmp_path / f"{name}.py").write_text(source)
        monkeypatch.delitem(sys.modules, name, raising=False)
        return name

    return write


@pytest.fixture
def error_log(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> pytest.LogCaptureFixture:
    """``krandog_asgi.error`` records, even if ``configure_logging`` stopped propagation."""
    monkeypatch.setattr(logging.getLogger("krandog_asgi.error"), "propagate", True)
    caplog.set_level(logging.DEBUG, logger="krandog_asgi.error")
    return caplog


ASGI_APP = "async def app(scope, receive, send):\n    pass\n"


# -- import strings -------------------------------------------------------------------------


def test_import_string_with_a_dotted_attribute(module: Callable[[str], str]) -> None:
    name = module("class Holder:\n    class Inner:\n        value = 42\n")
    assert import_from_string(f"{name}:Holder.Inner.value") == 42


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("nosuchmodule_xyz:app", 'Could not import module "nosuchmodule_xyz".'),
        ("nosuchpackage_xyz.sub:app", 'Could not import module "nosuchpackage_xyz.sub".'),
        ("json:nope", 'Attribute "nope" not found in module "json".'),
        ("json:decoder.nope", 'Attribute "decoder.nope" not found in module "json".'),
        ("json", 'Import string "json" must be in format "<module>:<attribute>".'),
        (":app", 'Import string ":app" must be in format "<module>:<attribute>".'),
    ],
)
def test_import_string_errors_are_one_message(target: str, message: str) -> None:
    with pytest.raises(ImportFromStringError) as exc:
        import_from_string(target)
    assert str(exc.value) == message


def test_a_failing_import_inside_the_module_is_not_reported_as_a_missing_module(
    module: Callable[[str], str],
) -> None:
    name = module("import not_a_real_dependency_xyz\n")
    with pytest.raises(ModuleNotFoundError, match="not_a_real_dependency_xyz"):
        import_from_string(f"{name}:app")


# -- factories and handlers ------------------------------------------------------------------


def load(app: Any, **options: Any) -> Any:
    return load_app(Config(app=app, **options))


def test_app_dir_goes_first_on_sys_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "loader_app_dir_target.py").write_text(ASGI_APP)
    monkeypatch.delitem(sys.modules, "loader_app_dir_target", raising=False)
    app = load("loader_app_dir_target:app", app_dir=str(tmp_path))
    assert sys.path[0] == str(tmp_path)
    assert app.__name__ == "app"


def test_factory_flag_calls_the_factory(module: Callable[[str], str]) -> None:
    name = module(ASGI_APP + "def create(*args):\n    return app\n")
    assert load(f"{name}:create", factory=True) is import_from_string(f"{name}:app")


def test_factory_flag_needs_something_callable(module: Callable[[str], str]) -> None:
    name = module("value = 3\n")
    with pytest.raises(ImportFromStringError, match="--factory was given"):
        load(f"{name}:value", factory=True)


def test_a_function_without_arguments_is_taken_for_a_factory_with_a_warning(
    module: Callable[[str], str], error_log: pytest.LogCaptureFixture
) -> None:
    name = module(ASGI_APP + "def create_app():\n    return app\n")
    assert load(f"{name}:create_app") is import_from_string(f"{name}:app")
    assert "ASGI app factory detected" in error_log.text
    error_log.clear()
    # Only with --interface auto: an explicit interface means APP is what it says.
    assert load(f"{name}:create_app", interface="asgi").__name__ == "create_app"
    assert not error_log.records


def test_a_failing_factory_raises_its_own_error(module: Callable[[str], str]) -> None:
    name = module("def broken():\n    raise RuntimeError('factory exploded')\n")
    with pytest.raises(RuntimeError, match="factory exploded"):
        load(f"{name}:broken", factory=True)


def test_an_app_that_is_not_callable_is_refused() -> None:
    with pytest.raises(ImportFromStringError, match="is not callable"):
        load("json:__name__")


def test_a_krandog_handler_is_wrapped_and_an_asgi_app_is_not(module: Callable[[str], str]) -> None:
    name = module(ASGI_APP + "def handler(request):\n    return 'hi'\n")
    assert isinstance(load(f"{name}:handler"), KrandogApp)
    assert load(f"{name}:app") is import_from_string(f"{name}:app")


# -- a load failure is one line in the log ----------------------------------------------------


@pytest.mark.parametrize(
    ("source", "target", "line"),
    [
        (
            "",
            "{name}:nope",
            'Error loading ASGI app. Attribute "nope" not found in module "{name}".',
        ),
        (
            "import not_a_real_dependency_xyz\n",
            "{name}:app",
            'Error loading ASGI app "{name}:app": ModuleNotFoundError: No module named '
            "'not_a_real_dependency_xyz' ({file}, line 1).",
        ),
        (
            "def broken():\n    raise RuntimeError('factory exploded')\n",
            "{name}:broken",
            'Error loading ASGI app "{name}:broken": RuntimeError: factory exploded '
            "({file}, line 2).",
        ),
        (
            "x = 1\nif x:\n    1 / 0\n",
            "{name}:app",
            'Error loading ASGI app "{name}:app": ZeroDivisionError: division by zero '
            "({file}, line 3).",
        ),
        (
            "def app(:\n",
            "{name}:app",
            'Error loading ASGI app "{name}:app": SyntaxError: invalid syntax ({file}, line 1).',
        ),
    ],
    ids=["attribute", "dependency", "factory", "module-body", "syntax"],
)
def test_a_load_failure_is_one_error_line_naming_file_and_line_and_exit_code_1(
    module: Callable[[str], str],
    error_log: pytest.LogCaptureFixture,
    tmp_path: Path,
    source: str,
    target: str,
    line: str,
) -> None:
    name = module(source)
    config = Config(app=target.format(name=name), factory="broken" in target)
    assert Server(config).run() == 1
    errors = [r for r in error_log.records if r.levelno >= logging.ERROR]
    file = tmp_path / f"{name}.py"
    assert [r.getMessage() for r in errors] == [line.format(name=name, file=file)]
    assert errors[0].exc_info is None  # the traceback goes to the debug record only
    assert [r.exc_info is not None for r in error_log.records if r.levelno == logging.DEBUG] == [
        True
    ]


def test_a_bad_option_is_logged_as_itself_not_as_a_bad_app(
    error_log: pytest.LogCaptureFixture,
) -> None:
    config = Config(app="json:loads", headers=[("X-Bad", "caf\u00e9\u20ac")])
    assert Server(config).run() == 1
    errors = [r.getMessage() for r in error_log.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].startswith("Invalid --header 'X-Bad':")


def test_detection_and_interface_override() -> None:

    def sync_handler(req: Any) -> Any: ...

    async def async_handler(req: Any) -> Any: ...

    async def asgi_app(scope: Any, receive: Any, send: Any) -> None: ...

    class AsgiClass:
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None: ...

    class OneArg:
        def __call__(self, req: Any) -> Any: ...

    def with_defaults(req: Any, extra: int = 1, *, key: str = "") -> Any: ...

    def variadic(*args: Any) -> Any: ...

    wrapped = krandog_app(sync_handler)
    assert looks_like_krandog_handler(sync_handler)
    assert looks_like_krandog_handler(async_handler)
    assert looks_like_krandog_handler(OneArg())
    assert looks_like_krandog_handler(with_defaults)
    assert not looks_like_krandog_handler(asgi_app)
    assert not looks_like_krandog_handler(AsgiClass())
    assert not looks_like_krandog_handler(AsgiClass)
    assert not looks_like_krandog_handler(variadic)
    assert not looks_like_krandog_handler(wrapped)

    def resolve(app: Any, **options: Any) -> Any:
        return load_app(Config(app=app, **options))

    assert isinstance(resolve(sync_handler), KrandogApp)
    assert resolve(async_handler).is_async
    assert resolve(asgi_app) is asgi_app
    assert resolve(wrapped) is wrapped
    assert resolve(sync_handler, interface="asgi") is sync_handler
    assert isinstance(resolve(asgi_app, interface="krandog"), KrandogApp)
    assert resolve(sync_handler, handler_threads=True).threads
    assert not resolve(async_handler, handler_threads=True).threads

    with pytest.raises(TypeError, match="already wrapped"):
        krandog_app(wrapped)
    with pytest.raises(TypeError, match="must be callable"):
        krandog_app(42)  # type: ignore[call-overload]
