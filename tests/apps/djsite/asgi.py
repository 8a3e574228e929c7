"""Plain Django ASGI: ``krandog-asgi djsite.asgi:application``."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djsite.settings")

from django.core.asgi import get_asgi_application

application = get_asgi_application()
