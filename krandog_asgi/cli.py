"""``krandog-asgi APP [options]`` and ``krandog-asgi connect URL``.

The parser is built from ``Config``'s fields (each carries its ``Flag``), so the flags map 1:1
onto ``Config`` and a new option needs no code here. Flag names follow uvicorn's wherever the
meaning is the same, so switching servers needs no relearning.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from krandog_asgi import flags
from krandog_asgi._cliparse import ShortErrorParser
from krandog_asgi.config import Config
from krandog_asgi.flags import GROUPS, Flag, field_default, flag_fields

__all__ = ["build_parser", "main", "options_from_args"]

USAGE = """krandog-asgi APP [options]
       krandog-asgi connect URL [options]"""

EPILOG = """commands:
  krandog-asgi connect URL   interactive WebSocket client (a prompt, history,
                             /ping, /close ...); 'krandog-asgi connect --help'

Sizes take k/m suffixes (--ws-max-size 32m). Every option is also a keyword of
krandog_asgi.run(app, **options)."""

# What a value looks like in --help, by its parser (argparse would print the field's name).
_METAVARS: dict[Any, str] = {
    flags.seconds: "SECONDS",
    flags.optional_seconds: "SECONDS",
    flags.size: "BYTES",
    flags.optional_size: "BYTES",
    int: "N",
    flags.positive_int: "N",
    flags.non_negative_int: "N",
    flags.optional_count: "N",
    flags.auto_count: "N",
    flags.port_number: "PORT",
}


# uvicorn flags that choose what always runs here (uvloop, httptools): accepted, not shown,
# and not passed on.
IGNORED_UVICORN_FLAGS = {"--loop": ("auto", "uvloop"), "--http": ("auto", "httptools")}


class _Toggle(argparse.Action):
    """``--x`` sets True and ``--no-x`` False: one action, so ``--help`` shows the pair on one
    line (argparse's BooleanOptionalAction would print its own default text)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, not (option_string or "").startswith("--no-"))

    def format_usage(self) -> str:
        return " | ".join(self.option_strings)


class _Ignored(argparse.Action):
    """Checks its value against ``choices`` (argparse does) and keeps nothing."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        pass


def build_parser() -> argparse.ArgumentParser:
    parser = ShortErrorParser(
        prog="krandog-asgi",
        usage=USAGE,
        description="Serve an ASGI 3 app or a krandog-style handler; APP is module:attr\n"
        "(attr may be dotted). Flag names follow uvicorn's where the meaning is the same.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"krandog-asgi {_version()}")
    groups = {name: parser.add_argument_group(name) for name in GROUPS}
    for f, flag in flag_fields(Config):
        default = field_default(f)
        kwargs = _argument(flag, f.name, default)
        if flag.positional:
            parser.add_argument(f.name, **kwargs)
        else:
            if flag.group is None:
                raise TypeError(f"Config.{f.name}: a flag needs a --help group")
            groups[flag.group].add_argument(*flag.option_strings(f.name), dest=f.name, **kwargs)
    for name, choices in IGNORED_UVICORN_FLAGS.items():
        parser.add_argument(
            name,
            action=_Ignored,
            choices=choices,
            default=argparse.SUPPRESS,
            help=argparse.SUPPRESS,
        )
    return parser


def _argument(flag: Flag, name: str, default: Any) -> dict[str, Any]:
    """``add_argument`` keywords for one field; the kind of flag follows from ``Flag``."""
    kwargs: dict[str, Any] = {"help": flag.help_text(default)}
    metavar = flag.metavar or _METAVARS.get(flag.parse)
    if metavar is not None:
        kwargs["metavar"] = metavar
    if flag.positional:
        return kwargs
    if flag.negatable:
        return {**kwargs, "action": _Toggle, "default": default}
    if flag.repeat:
        return {**kwargs, "action": "append", "type": flag.parse, "default": default}
    if isinstance(default, bool) and flag.parse is None:
        if default:  # store_true could never turn it off
            raise TypeError(f"Config.{name} defaults to True: its flag needs negatable=True")
        return {**kwargs, "action": "store_true"}
    # A flag with an environment default stays None when absent: options_from_args reads the
    # variable then (not while parsing, so a bad value cannot break --help).
    kwargs["default"] = None if flag.env else default
    return {**kwargs, "type": flag.parse, "choices": flag.choices}


def _version() -> str:
    from krandog_asgi import __version__

    return __version__


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Parsed flags as ``Config`` keyword arguments, environment defaults filled in."""
    options: dict[str, Any] = vars(args).copy()
    for f, flag in flag_fields(Config):
        if flag.env and options.get(f.name) is None:
            try:
                options[f.name] = flag.env_default(field_default(f))
            except (argparse.ArgumentTypeError, ValueError) as exc:
                raise SystemExit(f"error: ${flag.env} {exc}") from None
    return options


def main(argv: Sequence[str] | None = None) -> None:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "connect":
        from krandog_asgi.wsclient.cli import main as connect_main

        sys.exit(connect_main(args_list[1:]))
    args = build_parser().parse_args(args_list)
    if args.env_file:
        # Before the environment defaults ($WEB_CONCURRENCY) are read: the file may set them.
        from krandog_asgi.process.envfile import apply_env_file

        if not apply_env_file(args.env_file):
            sys.exit(1)
    if ":" not in args.app:
        print(f'Error: APP must be "<module>:<attribute>", got "{args.app}".', file=sys.stderr)
        sys.exit(1)
    from krandog_asgi.server import run

    options = options_from_args(args)
    sys.exit(run(options.pop("app"), **options))
