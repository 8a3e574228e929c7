"""The command line, in memory: the parser built from ``Config``'s fields, every value parser,
uvicorn's spellings, environment defaults and what ``main`` hands to ``run``.

The real-process side (exit codes, workers, reload, signals) is in ``test_cli_process.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import krandog_asgi
from krandog_asgi import cli
from krandog_asgi.cli import build_parser, main, options_from_args
from krandog_asgi.config import Config
from krandog_asgi.flags import (
    FLAG,
    Choice,
    boolean,
    field_default,
    flag_fields,
    header,
    option,
    optional_seconds,
    optional_size,
    parse_size,
    positive_int,
    seconds,
    size,
)

# Fields set from Python only: each needs a reason to have no flag.
PROGRAMMATIC_ONLY = {
    "ws_deflate_window_bits": "permessage-deflate tuning, not a deployment choice",
    "ws_deflate_mem_level": "permessage-deflate tuning, not a deployment choice",
}


@pytest.fixture(autouse=True)
def _no_environment_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's $WEB_CONCURRENCY or $FORWARDED_ALLOW_IPS must not change the defaults."""
    for name in ("WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS"):
        monkeypatch.setenv(name, "")  # recorded, so that teardown restores it
        monkeypatch.delenv(name)


def options(*argv: str) -> dict[str, Any]:
    return options_from_args(build_parser().parse_args(["m:app", *argv]))


def parse_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["m:app", *argv])
    assert exc.value.code == 2
    return capsys.readouterr().err


# -- the parser is built from Config ---------------------------------------------------------


def test_every_config_field_has_a_flag_or_is_listed_as_programmatic_only() -> None:
    for f in dataclasses.fields(Config):
        if f.name in PROGRAMMATIC_ONLY:
            assert FLAG not in f.metadata, f"{f.name} has a flag: drop it from PROGRAMMATIC_ONLY"
        else:
            assert FLAG in f.metadata, f"Config.{f.name} has no flag (add option(...) metadata)"


def test_every_flag_is_an_argument_with_the_fields_name_as_dest() -> None:
    parser = build_parser()
    dests = {action.dest for action in parser._actions}
    for f, flag in flag_fields(Config):
        assert f.name in dests
        if not flag.positional:
            for name in flag.option_strings(f.name):
                assert name in parser._option_string_actions, name


def test_flag_names_are_the_field_names_except_repeatable_lists() -> None:
    """``--ws-max-size`` is ``ws_max_size``; a list is named for one item (``--header``)."""
    renamed = {}
    for f, flag in flag_fields(Config):
        if flag.positional:
            continue
        own = "--" + f.name.replace("_", "-")
        if own not in flag.option_strings(f.name):
            renamed[f.name] = flag.option_strings(f.name)
    assert renamed == {
        "reload_dirs": ("--reload-dir",),
        "reload_includes": ("--reload-include",),
        "reload_excludes": ("--reload-exclude",),
        "headers": ("--header",),
    }


def test_help_shows_every_flag_with_its_help_and_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "2000")  # no wrapping, which would break "--a-b" at a hyphen
    text = " ".join(build_parser().format_help().split())
    for f, flag in flag_fields(Config):
        for name in () if flag.positional else flag.option_strings(f.name):
            assert name in text
        assert " ".join(flag.help.split()) in text, f.name
        default = field_default(f)
        if isinstance(default, (int, float, str)) and not isinstance(default, bool) and default:
            assert f"(default: {default})" in text or flag.shown_default or flag.env, f.name
    for shown in (
        "(default: 127.0.0.1)",
        "(default: 8000)",
        "(default: $WEB_CONCURRENCY, else 1)",
        "(default: $FORWARDED_ALLOW_IPS, else 127.0.0.1)",
        "(default: unlimited)",
        "--access-log, --no-access-log log one line per request (default: on)",
        "negotiate permessage-deflate (default: true)",
        "--ws {auto,krandog,none}",
        "(default: 30.0)",
    ):
        assert shown in text, shown
    assert "--loop" not in text
    assert "--http " not in text


def test_defaults_from_the_parser_build_the_default_config() -> None:
    parsed = options()
    assert set(parsed) == {f.name for f, _ in flag_fields(Config)}
    assert Config(**parsed) == Config(app="m:app")


def test_a_new_option_is_one_field() -> None:
    """What a later flag costs: one field with its metadata, nothing in the CLI."""

    @dataclasses.dataclass
    class Extended(Config):
        drain_pause: float = option(0.25, "pause before draining", group="processes", parse=seconds)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "Config", Extended)
        assert options()["drain_pause"] == 0.25
        assert options("--drain-pause", "1.5")["drain_pause"] == 1.5
        assert "--drain-pause SECONDS" in build_parser().format_help()


def test_a_switch_that_defaults_to_on_must_be_negatable() -> None:
    @dataclasses.dataclass
    class Broken(Config):
        always_on: bool = option(True, "cannot be turned off", group="HTTP")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "Config", Broken)
        with pytest.raises(TypeError, match=r"Config\.always_on defaults to True"):
            build_parser()


# -- flags with their meanings -------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "name", "value"),
    [
        (["--timeout-graceful-shutdown", "none"], "timeout_graceful_shutdown", None),
        (["--timeout-graceful-shutdown", "0"], "timeout_graceful_shutdown", None),
        (["--timeout-graceful-shutdown", "2.5"], "timeout_graceful_shutdown", 2.5),
        (["--ws-ping-interval", "0"], "ws_ping_interval", None),
        (["--ws-ping-timeout", "off"], "ws_ping_timeout", None),
        (["--limit-request-body", "off"], "limit_request_body", None),
        (["--limit-request-body", "0"], "limit_request_body", 0),
        (["--limit-request-body", "2m"], "limit_request_body", 2 * 1024 * 1024),
        (["--ws-max-size", "64KiB"], "ws_max_size", 65536),
        (["--ws-write-limit", "1k"], "ws_write_limit", 1024),
        (["--ws-per-message-deflate", "false"], "ws_per_message_deflate", False),
        (["--ws-per-message-deflate", "yes"], "ws_per_message_deflate", True),
        (["--no-access-log"], "access_log", False),
        (["--use-colors"], "use_colors", True),
        (["--no-use-colors"], "use_colors", False),
        ([], "use_colors", None),
        (["--no-proxy-headers"], "proxy_headers", False),
        (["--no-prox"], "proxy_headers", False),  # argparse's abbreviations, as before
        (["--reload"], "reload", True),
        (["--factory"], "factory", True),
        (["--handler-threads"], "handler_threads", True),
        (["--reload-dir", "a", "--reload-dir", "b"], "reload_dirs", ["a", "b"]),
        (["--reload-include", "*.html"], "reload_includes", ["*.html"]),
        (["--reload-exclude", "tmp/*"], "reload_excludes", ["tmp/*"]),
        (["--header", "X-A: 1", "--header", "X-B:2"], "headers", [("X-A", "1"), ("X-B", "2")]),
        (["--ws", "none"], "ws", False),
        (["--ws", "websockets-sansio"], "ws", True),
        (["--ws", "wsproto"], "ws", True),
        (["--interface", "krandog"], "interface", "krandog"),
        (["--lifespan", "off"], "lifespan", "off"),
        (["--log-level", "trace"], "log_level", "trace"),
        (["--log-config", "log.json"], "log_config", "log.json"),
        (["--uds", "/tmp/x.sock"], "uds", "/tmp/x.sock"),
        (["--fd", "3"], "fd", 3),
        (["--port", "0"], "port", 0),
        (["--host", "::1"], "host", "::1"),
        (["--ssl-cert-reqs", "2"], "ssl_cert_reqs", 2),
        (["--ssl-ciphers", "ECDHE"], "ssl_ciphers", "ECDHE"),
        (["--env-file", ".env"], "env_file", ".env"),
        (["--app-dir", "src"], "app_dir", "src"),
    ],
)
def test_flag_value(argv: list[str], name: str, value: Any) -> None:
    assert options(*argv)[name] == value


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--ws", "nonsense"],
            "invalid choice: 'nonsense' (choose from 'auto', 'krandog', 'none')",
        ),
        (["--lifespan", "maybe"], "invalid choice: 'maybe'"),
        (["--ws-per-message-deflate", "perhaps"], "expected true or false, got 'perhaps'"),
        (["--timeout-keep-alive", "-1"], "must not be negative"),
        (["--ws-ping-interval", "-1"], "must not be negative"),
        (["--limit-request-line=-1k"], "size must not be negative"),
        (["--limit-request-line", "lots"], "argument --limit-request-line"),
        (["--header", "no colon"], "expected 'Name: value'"),
        (["--port", "http"], "argument --port: must be a number 0-65535, not 'http'"),
        (["--loop", "asyncio"], "argument --loop: invalid choice"),
    ],
)
def test_bad_flag_value_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert message in parse_error(capsys, *argv)


def test_uvicorn_loop_and_http_flags_are_accepted_and_not_passed_on() -> None:
    parsed = options("--loop", "uvloop", "--http", "httptools")
    assert "loop" not in parsed
    assert "http" not in parsed
    assert Config(**parsed) == Config(app="m:app")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"krandog-asgi {krandog_asgi.__version__}"


# -- environment defaults ------------------------------------------------------------------


def test_forwarded_allow_ips_comes_from_the_environment_unless_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Config(**options()).forwarded_allow_ips == "127.0.0.1"
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.0/8")
    assert Config(**options()).forwarded_allow_ips == "10.0.0.0/8"
    assert Config(app=_noop).forwarded_allow_ips == "10.0.0.0/8"  # run() reads it too
    given = options("--forwarded-allow-ips", "*")
    assert Config(**given).forwarded_allow_ips == "*"


def test_web_concurrency_is_read_by_the_cli_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """As with uvicorn: ``run(app)`` from Python keeps one worker whatever the environment."""
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    assert options()["workers"] == 4
    assert Config(app=_noop).workers == 1


def test_bad_web_concurrency_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad, reason in (
        ("many", "must be an integer, not 'many'"),
        ("0", "must be at least 1, not 0"),
    ):
        monkeypatch.setenv("WEB_CONCURRENCY", bad)
        with pytest.raises(SystemExit, match=rf"^error: \$WEB_CONCURRENCY {reason}$"):
            options()


# -- main -----------------------------------------------------------------------------------


@pytest.fixture
def run_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, dict[str, Any]]]:
    """``main`` with ``server.run`` replaced: what would have been served, and with what."""
    import krandog_asgi.server

    calls: list[tuple[Any, dict[str, Any]]] = []

    def fake_run(app: Any, **options: Any) -> int:
        calls.append((app, options))
        return 0

    monkeypatch.setattr(krandog_asgi.server, "run", fake_run)
    return calls


def exit_code(call: Callable[[], None]) -> Any:
    with pytest.raises(SystemExit) as exc:
        call()
    return exc.value.code


def test_main_passes_every_option_to_run(run_calls: list[tuple[Any, dict[str, Any]]]) -> None:
    assert exit_code(lambda: main(["proc:app", "--port", "0", "--no-date-header"])) == 0
    [(app, passed)] = run_calls
    assert app == "proc:app"
    assert passed["port"] == 0
    assert passed["date_header"] is False
    assert Config(app, **passed) == Config(app="proc:app", port=0, date_header=False)


def test_env_file_sets_defaults_before_they_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_calls: list[tuple[Any, dict[str, Any]]]
) -> None:
    env_file = tmp_path / "workers.env"
    env_file.write_text("WEB_CONCURRENCY=2\n")
    monkeypatch.setenv("WEB_CONCURRENCY", "")  # restored after the file sets it
    monkeypatch.delenv("WEB_CONCURRENCY")
    assert exit_code(lambda: main(["proc:app", "--env-file", str(env_file)])) == 0
    assert run_calls[0][1]["workers"] == 2


def test_unreadable_env_file_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], run_calls: list[tuple[Any, dict[str, Any]]]
) -> None:
    assert exit_code(lambda: main(["proc:app", "--env-file", "/nonexistent/app.env"])) == 1
    err = capsys.readouterr().err
    assert err == "Error: cannot read --env-file /nonexistent/app.env: No such file or directory\n"
    assert not run_calls


def test_app_without_a_colon_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], run_calls: list[tuple[Any, dict[str, Any]]]
) -> None:
    assert exit_code(lambda: main(["proc"])) == 1
    assert capsys.readouterr().err == 'Error: APP must be "<module>:<attribute>", got "proc".\n'
    assert not run_calls


def test_connect_goes_to_the_websocket_client(monkeypatch: pytest.MonkeyPatch) -> None:
    import krandog_asgi.wsclient.cli

    seen: list[list[str]] = []

    def fake_connect(argv: list[str]) -> int:
        seen.append(argv)
        return 7

    monkeypatch.setattr(krandog_asgi.wsclient.cli, "main", fake_connect)
    assert exit_code(lambda: main(["connect", "ws://127.0.0.1:1/", "-H", "X: y"])) == 7
    assert seen == [["ws://127.0.0.1:1/", "-H", "X: y"]]


# -- the value parsers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("65536", 65536),
        ("64k", 65536),
        ("64K", 65536),
        ("64KiB", 65536),
        ("64kb", 65536),
        ("16m", 16 * 1024 * 1024),
        ("16MiB", 16 * 1024 * 1024),
        (" 2k ", 2048),
        ("0", 0),
    ],
)
def test_sizes_take_k_and_m_suffixes(text: str, value: int) -> None:
    assert parse_size(text) == value
    assert size(text) == value
    assert optional_size(text) == value


def test_size_rejects_negative_and_garbage() -> None:
    assert parse_size(4096) == 4096  # a number from Python passes through
    for bad in ("-1", "-1k", "k", "", "1g", "ten"):
        with pytest.raises(ValueError):
            parse_size(bad)
        with pytest.raises(argparse.ArgumentTypeError):
            size(bad)


def test_optional_size_none_and_off_mean_no_limit() -> None:
    for text in ("none", "off", "OFF", ""):
        assert optional_size(text) is None


def test_seconds_and_optional_seconds() -> None:
    assert seconds("0") == 0.0
    assert seconds("2.5") == 2.5
    assert optional_seconds("2.5") == 2.5
    for disabled in ("0", "none", "off", "false", "", " None "):
        assert optional_seconds(disabled) is None
    for parser in (seconds, optional_seconds):
        with pytest.raises(argparse.ArgumentTypeError, match="must not be negative"):
            parser("-1")
        with pytest.raises(ValueError):
            parser("soon")


def test_boolean_spellings() -> None:
    for text in ("1", "true", "True", "yes", "on"):
        assert boolean(text) is True
    for text in ("0", "false", "FALSE", "no", "off"):
        assert boolean(text) is False
    with pytest.raises(argparse.ArgumentTypeError):
        boolean("maybe")


def test_header_and_positive_int() -> None:
    assert header("X-A:  b c ") == ("X-A", "b c")
    assert header("X-Empty:") == ("X-Empty", "")
    for bad in ("X-A", ": b", " :b"):
        with pytest.raises(argparse.ArgumentTypeError):
            header(bad)
    assert positive_int("3") == 3
    for bad in ("0", "-2", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_int(bad)


def test_choice_maps_names_and_shows_only_its_own() -> None:
    choice = Choice({"a": 1, "alias": 1, "b": 2}, shown=("a", "b"))
    assert (choice("a"), choice("alias"), choice("b")) == (1, 1, 2)
    assert choice.metavar == "{a,b}"
    with pytest.raises(argparse.ArgumentTypeError, match=r"choose from 'a', 'b'\)$"):
        choice("c")


async def _noop(scope: Any, receive: Any, send: Any) -> None: ...


# -- errors a person makes at the command line ----------------------------------------------


def error_lines(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    """A usage error: exit 2 and exactly two lines, the problem and where the help is."""
    lines = parse_error(capsys, *argv).splitlines()
    assert len(lines) == 2, lines
    assert lines[1] == "Run 'krandog-asgi --help' for the options."
    return lines


@pytest.mark.parametrize("value", ["99999", "65536", "-1"])
def test_port_outside_0_to_65535_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], value: str
) -> None:
    (line, _) = error_lines(capsys, "--port", value)
    assert line == f"krandog-asgi: error: argument --port: must be 0-65535, not {value}"
    assert options("--port", "65535")["port"] == 65535
    with pytest.raises(ValueError, match="port must be 0-65535, not 70000"):
        Config(app="m:app", port=70000)


def test_workers_zero_is_refused_on_the_command_line_and_in_python(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (line, _) = error_lines(capsys, "--workers", "0")
    assert line == "krandog-asgi: error: argument --workers: must be at least 1, not 0"
    with pytest.raises(ValueError, match="workers must be at least 1"):
        Config(app="m:app", workers=0)
    monkeypatch.setenv("WEB_CONCURRENCY", "0")
    with pytest.raises(SystemExit, match=r"\$WEB_CONCURRENCY must be at least 1"):
        options()


@pytest.mark.parametrize(
    ("argv", "suggestion"),
    [
        (["--prot", "80"], "(did you mean --port?)"),
        (["--workrs=3"], "(did you mean --workers?)"),
        (["--relod", "--acess-log"], "(did you mean --reload or --access-log?)"),
        (["--ws-max-sise", "1m"], "(did you mean --ws-max-size?)"),
    ],
)
def test_a_misspelt_flag_gets_did_you_mean_instead_of_the_usage(
    capsys: pytest.CaptureFixture[str], argv: list[str], suggestion: str
) -> None:
    (line, _) = error_lines(capsys, *argv)
    assert line.startswith("krandog-asgi: error: unrecognized arguments: ")
    assert line.endswith(suggestion)


def test_a_flag_nothing_resembles_gets_no_guess(capsys: pytest.CaptureFixture[str]) -> None:
    (line, _) = error_lines(capsys, "--zzzzzzzz")
    assert line == "krandog-asgi: error: unrecognized arguments: --zzzzzzzz"


def test_missing_app_is_a_short_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([])
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "krandog-asgi: error: the following arguments are required: APP",
        "Run 'krandog-asgi --help' for the options.",
    ]


# -- uvicorn's flags with the same meaning --------------------------------------------------


def test_interface_asgi3_is_uvicorns_name_for_asgi(capsys: pytest.CaptureFixture[str]) -> None:
    assert options("--interface", "asgi3")["interface"] == "asgi"
    assert Config(app="m:app", interface="asgi3").interface == "asgi"  # type: ignore[arg-type]
    (line, _) = error_lines(capsys, "--interface", "asgi2")  # ASGI 2 apps are not served
    assert "invalid choice: 'asgi2'" in line


def test_reload_delay_jitter_and_worker_healthcheck_flags() -> None:
    assert options()["reload_delay"] == 0.25
    assert options("--reload-delay", "1.5")["reload_delay"] == 1.5
    assert options()["limit_max_requests_jitter"] == 0
    assert options("--limit-max-requests-jitter", "20")["limit_max_requests_jitter"] == 20
    assert options()["timeout_worker_healthcheck"] == 5.0
    assert options("--timeout-worker-healthcheck", "0")["timeout_worker_healthcheck"] is None


def test_jitter_gives_each_worker_its_own_request_limit() -> None:
    import asyncio

    from krandog_asgi.process.state import ServerState

    loop = asyncio.new_event_loop()
    try:

        def limit(**options: Any) -> int | None:
            return ServerState(Config(app="m:app", **options), _noop, loop).max_requests

        limits = {limit(limit_max_requests=100, limit_max_requests_jitter=10) for _ in range(60)}
        assert limits <= set(range(100, 111))
        assert len(limits) > 3  # spread out, not one shared value
        assert {limit(limit_max_requests=100) for _ in range(10)} == {100}
        assert limit() is None
    finally:
        loop.close()


# -- --help ----------------------------------------------------------------------------------


def test_help_at_80_columns_wraps_and_names_the_connect_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    text = build_parser().format_help()
    too_long = [line for line in text.splitlines() if len(line) > 80]
    assert not too_long, too_long
    assert text.startswith(
        "usage: krandog-asgi APP [options]\n       krandog-asgi connect URL [options]\n"
    )
    assert "krandog-asgi connect URL   interactive WebSocket client" in text
    # values are named by what they are, not by the field's name in capitals
    assert "--timeout-keep-alive SECONDS" in text
    assert "--ws-max-size BYTES" in text
    assert "TIMEOUT_" not in text
    assert "LIMIT_" not in text


def test_readme_and_help_agree_on_the_values_of_each_choice() -> None:
    """Each README table row ``--flag a\\|b\\|c`` lists exactly the values --help shows."""
    import re

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    rows = dict(re.findall(r"^\| `(--[a-z-]+) ([a-z0-9-]+(?:\\\|[a-z0-9-]+)+)`", readme, re.M))
    assert {"--ws", "--interface", "--lifespan"} <= set(rows), rows
    parser = build_parser()
    for flag, values in rows.items():
        action = parser._option_string_actions[flag]
        shown = action.metavar or "{" + ",".join(action.choices or ()) + "}"
        assert values.split("\\|") == shown.strip("{}").split(","), flag


def test_env_file_is_read_once_by_cli_and_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI reads it before $WEB_CONCURRENCY, then hands the option to run(): once."""
    import krandog_asgi.server
    from krandog_asgi.process import envfile

    env_file = tmp_path / "once.env"
    env_file.write_text("KRANDOG_ONCE=1\n")
    reads: list[str] = []
    real = envfile.load_env_file

    def counting(path: str) -> None:
        reads.append(path)
        real(path)

    monkeypatch.setattr(envfile, "load_env_file", counting)
    monkeypatch.setattr(krandog_asgi.server.Server, "run", lambda self, sockets=None: 0)
    monkeypatch.setenv("KRANDOG_ONCE", "")
    monkeypatch.delenv("KRANDOG_ONCE")
    assert exit_code(lambda: main(["m:app", "--env-file", str(env_file), "--port", "0"])) == 0
    assert reads == [str(env_file)]
