"""``--log-config`` files (``process.logs.configure_logging``): the formats it reads, and the
one-line reason it gives when it cannot read one."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from krandog_asgi.process.logs import configure_logging

YAML_CONFIG = """\
version: 1
disable_existing_loggers: false
loggers:
  krandog_test_yaml:
    level: ERROR
"""


@pytest.fixture
def test_logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("krandog_test_yaml")
    level = log.level
    yield log
    log.setLevel(level)


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_a_yaml_config_is_applied(tmp_path: Path, suffix: str, test_logger: logging.Logger) -> None:
    path = tmp_path / f"log{suffix}"
    path.write_text(YAML_CONFIG)
    configure_logging(log_config=str(path))
    assert test_logger.level == logging.ERROR


def test_a_json_config_is_applied(tmp_path: Path, test_logger: logging.Logger) -> None:
    path = tmp_path / "log.json"
    path.write_text(
        '{"version": 1, "disable_existing_loggers": false,'
        ' "loggers": {"krandog_test_yaml": {"level": "WARNING"}}}'
    )
    configure_logging(log_config=str(path))
    assert test_logger.level == logging.WARNING


def test_without_pyyaml_a_yaml_config_names_the_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "log.yaml"
    path.write_text(YAML_CONFIG)
    monkeypatch.setitem(sys.modules, "yaml", None)  # as if PyYAML were not installed
    with pytest.raises(ImportError, match=r"needs PyYAML: pip install 'krandog-asgi\[yaml\]'"):
        configure_logging(log_config=str(path))
