"""Django with Channels: ``krandog-asgi djsite.channels_asgi:application``."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djsite.settings")

from django.core.asgi import get_asgi_application

django_http = get_asgi_application()  # before importing consumers: it sets Django up

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from djsite.consumers import EchoConsumer, RoomConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_http,
        "websocket": AllowedHostsOriginValidator(
            URLRouter(
                [
                    path("ws/echo", EchoConsumer.as_asgi()),
                    path("ws/room/<str:room>", RoomConsumer.as_asgi()),
                ]
            )
        ),
    }
)
