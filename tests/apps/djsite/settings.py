"""The smallest settings Django and Channels need: no database, no templates, no sessions."""

from __future__ import annotations

SECRET_KEY = "krandog-asgi-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "djsite.urls"
INSTALLED_APPS = ["channels"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
DATABASES: dict[str, object] = {}
USE_TZ = True
# Uploads above this go to a temporary file, so the multi-MB test exercises that path too.
FILE_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django": {"handlers": ["console"], "level": "WARNING"}},
}
