"""The broadcast options as ``Config`` fields and flags: defaults, checks, the environment."""

from __future__ import annotations

import pytest

from krandog_asgi.cli import build_parser, options_from_args
from krandog_asgi.config import Config, ConfigError


def test_defaults_are_the_memory_backend_and_sane_presence_timings() -> None:
    config = Config(app="x:y")
    assert config.broadcast_url == "memory://"
    assert config.broadcast_queue == 1024
    assert 0 < config.presence_heartbeat < config.presence_ttl <= 60
    config.check_options()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"broadcast_url": "kafka://host"}, "Unsupported broadcast URL"),
        ({"presence_ttl": 2.0, "presence_heartbeat": 2.0}, "--presence-heartbeat"),
        ({"presence_heartbeat": 0.0}, "--presence-heartbeat"),
    ],
)
def test_unusable_broadcast_options_are_a_config_error(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Config(app="x:y", **options).check_options()  # type: ignore[arg-type]


def test_flags_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = build_parser()
    args = parser.parse_args(
        ["x:y", "--broadcast-url", "redis://h:1/2", "--presence-ttl", "9", "--broadcast-queue", "5"]
    )
    assert (args.broadcast_url, args.presence_ttl, args.broadcast_queue) == ("redis://h:1/2", 9, 5)
    monkeypatch.setenv("KRANDOG_BROADCAST_URL", "redis://from-env:6379/0")
    options = options_from_args(build_parser().parse_args(["x:y"]))
    assert options["broadcast_url"] == "redis://from-env:6379/0"
    flag = options_from_args(build_parser().parse_args(["x:y", "--broadcast-url", "memory://"]))
    assert flag["broadcast_url"] == "memory://"  # the flag wins over the environment
    monkeypatch.delenv("KRANDOG_BROADCAST_URL")
    assert options_from_args(build_parser().parse_args(["x:y"]))["broadcast_url"] == "memory://"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["x:y", "--broadcast-queue", "0"])
