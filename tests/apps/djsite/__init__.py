"""A minimal Django project for ``tests/frameworks/test_django.py``: plain ASGI (``djsite.asgi``)
and Channels with the in-memory channel layer (``djsite.channels_asgi``)."""
