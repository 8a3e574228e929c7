"""The defaults the docs state are the defaults the server has.

Every flag generated from a ``Config`` field has a row in the README's options table, and
where a row says a default (README's table, docs/limits.md's tables) it is the field's own, as
the flag's parser reads it: a doc that says "30 s" for a field changed to 60 fails here.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from krandog_asgi.config import Config
from krandog_asgi.flags import Flag, field_default, flag_fields

ROOT = Path(__file__).resolve().parent.parent
FLAGS = {
    name: (f, flag)
    for f, flag in flag_fields(Config)
    if not flag.positional
    for name in flag.option_strings(f.name)
}
FLAG = re.compile(r"`(--[a-z][a-z-]*)")


def table_rows(text: str, header: str) -> list[list[str]]:
    """The cells of each row of the markdown table whose header row starts with ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def readme_options() -> list[list[str]]:
    return table_rows((ROOT / "README.md").read_text(), "| flag | default |")


def means(text: str, f: dataclasses.Field[Any], flag: Flag) -> bool:
    """Whether ``text``, a default as the docs write it, is field ``f``'s default."""
    default = field_default(f)
    text = re.sub(r"(\d),(\d{3})", r"\1\2", text.replace("`", "")).strip()
    if text.startswith("$"):  # "$VAR, else X": the variable is the flag's, X the default
        assert flag.env == text.split(",")[0][1:] or (flag.shown_default or "").startswith(text)
        text = text.partition("else ")[2]
    text = re.sub(r"\s*(s|/s)$", "", text)
    if text in ("", "no limit", "unlimited"):
        return default in (None, "", [], False)
    if text in ("on", "off"):
        return default is (text == "on")
    shown = flag.shown_default
    if shown is not None and (shown.split(":")[0] == text.split(":")[0] or shown.endswith(text)):
        return True  # "auto: 90% of ...", "$FORWARDED_ALLOW_IPS, else 127.0.0.1"
    if flag.parse is not None:
        return bool(flag.parse(text.replace(" ", "")) == default)
    return bool(text == str(default))


def test_every_flag_has_a_row_in_the_readme_options_table() -> None:
    listed = {name for row in readme_options() for name in FLAG.findall(row[0])}
    missing = [
        flag.option_strings(f.name)[0]
        for f, flag in flag_fields(Config)
        if not flag.positional and not set(flag.option_strings(f.name)) & listed
    ]
    assert missing == []
    assert listed <= set(FLAGS), listed - set(FLAGS)


def readme_defaults() -> list[tuple[str, str]]:
    """(flag, default) from each README row that gives one default per flag."""
    pairs = []
    for row in readme_options():
        names = [n for n in FLAG.findall(row[0]) if not n.startswith("--no-")]
        if not row[1] and len(names) > 1:
            continue  # a blank cell for a group of flags (TLS) states no default
        defaults = re.split(r",\s*(?!else)", row[1])
        if len(defaults) == len(names):
            pairs.extend(zip(names, defaults, strict=True))
    return pairs


@pytest.mark.parametrize(("name", "text"), readme_defaults())
def test_readme_options_table_states_the_config_default(name: str, text: str) -> None:
    f, flag = FLAGS[name]
    assert means(text, f, flag), f"README says {name} defaults to {text!r}: {field_default(f)!r}"


def limits_defaults() -> list[tuple[str, str]]:
    """(flag, default) from docs/limits.md: ``--flag`` (default; what else) cells."""
    text = (ROOT / "docs" / "limits.md").read_text()
    pairs = []
    for header in ("| limit | flag (default) |",):
        for start in [m.start() for m in re.finditer(re.escape(header), text)]:
            for row in table_rows(text[start:], header):
                match = re.match(r"(.*?)\((.*)\)$", row[1])
                if not match:
                    continue
                names = FLAG.findall(match.group(1))
                shown = re.split(r";|, (?=[a-z])", match.group(2))[0]
                defaults = shown.split(" / ")
                if names and len(defaults) == len(names):
                    pairs.extend(zip(names, defaults, strict=True))
    return pairs


def test_limits_doc_rows_were_read() -> None:
    """The parser of the next test found the tables (it cannot pass by reading nothing)."""
    names = {name for name, _ in limits_defaults()}
    assert {"--limit-request-body", "--timeout-write-stall", "--ws-ping-timeout"} <= names


@pytest.mark.parametrize(("name", "text"), limits_defaults())
def test_limits_doc_states_the_config_default(name: str, text: str) -> None:
    f, flag = FLAGS[name]
    assert means(text, f, flag), (
        f"docs/limits.md says {name} defaults to {text!r}: {field_default(f)!r}"
    )
