"""The Channels tutorial's chat consumer, as a yardstick: group_send echo, no persistence.

    DJANGO_SETTINGS_MODULE=bench.tutorial daphne bench.tutorial:application

A client connects to /ws/ROOM/ and sends text frames; each one is group_sent to the room and
every member's consumer sends it on (the sender included), as the Channels tutorial does.
"""

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only",
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=["channels"],
        CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 10000}}},
        ASGI_APPLICATION="bench.tutorial.application",
    )
    django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import re_path


class RoomConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.room = "room_" + self.scope["url_route"]["kwargs"]["room"]
        await self.channel_layer.group_add(self.room, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.room, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        await self.channel_layer.group_send(self.room, {"type": "room.message", "text": text_data})

    async def room_message(self, event):
        await self.send(text_data=event["text"])


application = ProtocolTypeRouter({"websocket": URLRouter([re_path(r"^ws/(?P<room>\w+)/$", RoomConsumer.as_asgi())])})
