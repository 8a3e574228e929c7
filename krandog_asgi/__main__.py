"""``python -m krandog_asgi`` is the ``krandog-asgi`` command."""

from __future__ import annotations

from krandog_asgi.cli import main

if __name__ == "__main__":
    main()
