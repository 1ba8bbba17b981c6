"""ASGI entry point: Django for HTTP, the chat consumer for WebSockets on /ws/."""

import gc
import os

from django.core.asgi import get_asgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatterbox.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from chat.attachments_views import UploadSizeGuard  # noqa: E402
from chat.routing import websocket_urlpatterns  # noqa: E402
from chatterbox.auth import SocketCredentialsMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": UploadSizeGuard(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(SocketCredentialsMiddleware(URLRouter(websocket_urlpatterns))),
    }
)

# The URL configuration, with every view module it names, loads on first use: the first socket's
# hello (which reverses the user's picture URL) paid for it, and it escaped the freeze below.
get_resolver().reverse_dict  # noqa: B018 - reading it builds it

# What the process loaded to start lives as long as it does: out of the collector's full passes,
# which otherwise walk all of it and stalled the message path for up to 100 ms at a time.
gc.collect()
gc.freeze()
