"""Channels consumers: an echo and a group chat over the in-memory channel layer."""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

DISCONNECTS: list[list[object]] = []  # [tag, code] for each echo connection that ended


class EchoConsumer(AsyncWebsocketConsumer):
    async def disconnect(self, code: int) -> None:
        DISCONNECTS.append([self.scope["query_string"].decode(), code])

    async def connect(self) -> None:
        await self.accept(
            subprotocol=self.scope["subprotocols"][0] if self.scope["subprotocols"] else None
        )

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is not None:
            if text_data == "close":
                await self.close(code=4001)
                return
            await self.send(text_data="echo:" + text_data)
        else:
            await self.send(bytes_data=bytes_data)


class RoomConsumer(AsyncWebsocketConsumer):
    """Everything one member sends reaches every member of the room, through the layer."""

    async def connect(self) -> None:
        self.group = "room-" + self.scope["url_route"]["kwargs"]["room"]
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.channel_layer.group_send(self.group, {"type": "room.message", "text": text_data})

    async def room_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])
