"""``argparse`` with short usage errors, for both command lines (``krandog-asgi`` and
``krandog-asgi connect``): a leaf module, so that the client imports nothing of the server."""

from __future__ import annotations

import argparse
import difflib
from typing import NoReturn

__all__ = ["ShortErrorParser"]


class ShortErrorParser(argparse.ArgumentParser):
    """A usage error is two short lines, not the whole usage: the problem, with "did you mean"
    for a misspelt flag, and where the help is."""

    def error(self, message: str) -> NoReturn:
        hint = self.suggestion(message)
        self.exit(
            2,
            f"{self.prog}: error: {message}{hint}\nRun '{self.prog} --help' for the options.\n",
        )

    def suggestion(self, message: str) -> str:
        prefix = "unrecognized arguments: "
        if not message.startswith(prefix):
            return ""
        known = [s for action in self._actions for s in action.option_strings]
        guesses = []
        for word in message[len(prefix) :].split():
            name = word.split("=", 1)[0]
            if name.startswith("-"):
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
                if close:
                    guesses.append(close[0])
        if not guesses:
            return ""
        return f" (did you mean {' or '.join(dict.fromkeys(guesses))}?)"
