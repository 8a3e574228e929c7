"""How a ``Config`` field is spelled on the command line, and the parsers of flag values.

Each flag lives in the metadata of its ``Config`` field (``option()`` puts it there), so the
option, its default, its flag and its help are written once; ``cli`` walks the fields and
builds the parser without code of its own for any option.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

__all__ = [
    "FLAG",
    "GROUPS",
    "Choice",
    "Flag",
    "KiB",
    "MiB",
    "auto_count",
    "boolean",
    "field_default",
    "flag_fields",
    "header",
    "non_negative_int",
    "option",
    "optional_count",
    "optional_seconds",
    "optional_size",
    "parse_size",
    "port_number",
    "positive_int",
    "repeated",
    "seconds",
    "size",
]

KiB = 1024
MiB = 1024 * 1024

Group = Literal[
    "binding", "processes", "application", "logging", "HTTP", "WebSocket", "broadcast", "TLS"
]
GROUPS: tuple[Group, ...] = get_args(Group)
"""The sections of ``--help``, in this order."""

FLAG = "krandog_asgi.flag"
"""The key of a field's ``Flag`` in its metadata."""

Parse = Callable[[str], Any]


@dataclass(frozen=True)
class Flag:
    """The command-line face of one ``Config`` field.

    The kind of flag follows from the field: ``negatable`` makes the ``--x/--no-x`` pair,
    ``repeat`` an ``action=append`` list, a ``bool`` field without ``parse`` a switch, and
    anything else takes one value, converted by ``parse``.
    """

    help: str
    group: Group | None = None  # None only for the positional APP
    names: tuple[str, ...] = ()  # default: --field-name
    parse: Parse | None = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    negatable: bool = False
    repeat: bool = False
    positional: bool = False
    # The CLI reads this variable when the flag is absent; Python callers get the field default.
    env: str | None = None
    env_parse: Parse | None = None
    shown_default: str | None = None  # what --help says when the default is not self-evident

    def option_strings(self, field_name: str) -> tuple[str, ...]:
        names = self.names or ("--" + field_name.replace("_", "-"),)
        if self.negatable:
            names = (*names, *("--no-" + name.removeprefix("--") for name in names))
        return names

    def help_text(self, default: Any) -> str:
        """The help line with its default, escaped for argparse's %-formatting."""
        shown = self._shown(default)
        text = f"{self.help} (default: {shown})" if shown is not None else self.help
        return text.replace("%", "%%")

    def _shown(self, default: Any) -> str | None:
        if self.shown_default is not None:
            shown: str | None = self.shown_default
        elif isinstance(default, bool):
            if self.negatable:
                shown = "on" if default else "off"
            else:  # a switch is off unless given; a BOOL value says true/false
                shown = str(default).lower() if self.parse is not None else None
        elif default is None or default == "" or default == []:
            shown = None
        else:
            shown = str(default)
        if self.env is not None:
            return f"${self.env}, else {shown}"
        return shown

    def env_default(self, fallback: Any) -> Any:
        """The value of ``$env`` (parsed), or ``fallback`` when it is unset or empty.

        Raises ``argparse.ArgumentTypeError`` for a value that does not parse."""
        assert self.env is not None
        raw = os.environ.get(self.env, "").strip()
        if not raw:
            return fallback
        parse = self.env_parse or self.parse
        return parse(raw) if parse is not None else raw


def option(
    default: Any,
    help: str,
    *,
    group: Group,
    flag: str | None = None,
    parse: Parse | None = None,
    choices: tuple[str, ...] | None = None,
    metavar: str | None = None,
    negatable: bool = False,
    env: str | None = None,
    env_parse: Parse | None = None,
    shown_default: str | None = None,
) -> Any:
    """A ``Config`` field with its flag, as ``dataclasses.field`` would make it."""
    spec = Flag(
        help,
        group,
        names=(flag,) if flag else (),
        parse=parse,
        choices=choices,
        metavar=metavar,
        negatable=negatable,
        env=env,
        env_parse=env_parse,
        shown_default=shown_default,
    )
    return dataclasses.field(default=default, metadata={FLAG: spec})


def repeated(
    help: str, *, group: Group, flag: str, metavar: str, parse: Parse | None = None
) -> Any:
    """A list field filled by a repeatable flag (``--reload-dir A --reload-dir B``)."""
    spec = Flag(help, group, names=(flag,), parse=parse, metavar=metavar, repeat=True)
    return dataclasses.field(default_factory=list, metadata={FLAG: spec})


def flag_fields(cls: type[Any]) -> list[tuple[dataclasses.Field[Any], Flag]]:
    """The fields of dataclass ``cls`` that have a flag, in declaration order."""
    return [(f, f.metadata[FLAG]) for f in dataclasses.fields(cls) if FLAG in f.metadata]


def field_default(f: dataclasses.Field[Any]) -> Any:
    """A fresh default of field ``f`` (None for the required APP)."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


# -- value parsers --------------------------------------------------------------------------
# A parser raises ArgumentTypeError with a message for the user (argparse prints it after the
# flag's name), or ValueError, which argparse reports as "invalid <parser name> value".


def parse_size(value: str | int) -> int:
    """Accept ``65536``, ``64k``, ``64KiB``, ``16m``, ``16MiB``: limits read better with units."""
    if isinstance(value, int):
        return value
    text = value.strip().lower().removesuffix("ib").removesuffix("b")
    factor = 1
    if text and text[-1] in "km":
        factor = KiB if text[-1] == "k" else MiB
        text = text[:-1]
    number = int(text)
    if number < 0:
        raise ValueError("size must not be negative")
    return number * factor


def size(value: str) -> int:
    try:
        return parse_size(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def optional_size(value: str) -> int | None:
    """A size, or ``none``/``off`` (or nothing) for no limit; ``0`` is a limit of zero."""
    if value.strip().lower() in ("", "none", "off"):
        return None
    return size(value)


def seconds(value: str) -> float:
    number = float(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return number


def optional_seconds(value: str) -> float | None:
    """``0``, ``none``, ``off``, ``false`` or an empty value disable a timer."""
    if value.strip().lower() in ("", "0", "none", "off", "false"):
        return None
    return seconds(value)


def _count(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, not {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return number


def optional_count(value: str) -> int | None:
    """A count, or ``0``/``none``/``off`` (or nothing) for no limit."""
    if value.strip().lower() in ("", "none", "off"):
        return None
    return _count(value) or None


def auto_count(value: str) -> int | None:
    """``auto`` (None: the server works it out), ``0``/``none``/``off`` (0: no limit), or a
    count."""
    lowered = value.strip().lower()
    if lowered == "auto":
        return None
    if lowered in ("", "none", "off"):
        return 0
    return _count(value)


def boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, not {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def non_negative_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, not {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {number}")
    return number


def port_number(value: str) -> int:
    """A TCP port: out of range is an error, not a number the kernel takes modulo 65536."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number 0-65535, not {value!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0-65535, not {number}")
    return number


def header(value: str) -> tuple[str, str]:
    """``Name: value`` as a (name, value) pair; the value is checked when the config loads."""
    name, sep, val = value.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {value!r}")
    return name.strip(), val.strip()


class Choice:
    """One of a fixed set of names, stored as what it maps to. Names left out of ``shown``
    are accepted but not advertised (another server's spellings, kept for compatibility)."""

    def __init__(self, values: Mapping[str, Any], shown: tuple[str, ...]) -> None:
        self.values = dict(values)
        self.shown = shown
        self.__name__ = "choice"  # argparse names the parser in some messages

    @property
    def metavar(self) -> str:
        return "{" + ",".join(self.shown) + "}"

    def __call__(self, value: str) -> Any:
        try:
            return self.values[value]
        except KeyError:
            choices = ", ".join(repr(name) for name in self.shown)
            raise argparse.ArgumentTypeError(
                f"invalid choice: {value!r} (choose from {choices})"
            ) from None
