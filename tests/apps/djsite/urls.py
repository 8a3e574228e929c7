"""Routes of the test project."""

from __future__ import annotations

from django.urls import path

from djsite import views

urlpatterns = [
    path("hello", views.hello),
    path("items/<int:item_id>", views.item),
    path("form", views.form),
    path("json", views.json_echo),
    path("upload", views.upload),
    path("stream", views.stream),
    path("file", views.file),
    path("slow", views.slow),
    path("cancelled", views.cancelled),
    path("error", views.error),
    path("where", views.where),
    path("ws-disconnects", views.ws_disconnects),
]
