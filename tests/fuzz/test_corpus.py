"""Every input the fuzzers kept (fuzz/corpus/, seeds and finds) replayed as a regression test,
through the same decoding and checks as the atheris targets (tests/support/fuzzing.py). No
atheris needed; fast (each input runs once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.fuzzing import frame_input, http_input

CORPUS = Path(__file__).resolve().parent.parent.parent / "fuzz" / "corpus"
FRAMES = sorted((CORPUS / "frames").iterdir())
HTTP = sorted((CORPUS / "http").iterdir())


def test_the_corpus_is_there_and_small() -> None:
    """A missing corpus would make the replays below vanish silently."""
    assert len(FRAMES) >= 7
    assert len(HTTP) >= 7
    for path in FRAMES + HTTP:
        assert path.stat().st_size <= 4096, path


@pytest.mark.parametrize("path", FRAMES, ids=[p.name for p in FRAMES])
def test_frame_parser_corpus_input(path: Path) -> None:
    frame_input(path.read_bytes())


@pytest.mark.parametrize("path", HTTP, ids=[p.name for p in HTTP])
def test_http_request_corpus_input(path: Path) -> None:
    http_input(path.read_bytes())
