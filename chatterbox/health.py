"""GET /health/: whether this process reaches its database and its channel layer.

200 {"database": "ok", "channel_layer": "ok"}, or 503 with the failing part's reason instead of
"ok", so that a load balancer takes the process out of rotation and an operator sees why.
"""

import asyncio
import logging

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 3.0


def _database_check() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connection.close()


async def _check(name: str, probe) -> str:
    """Run the probe for at most CHECK_TIMEOUT seconds; a hung probe is left to finish on its own."""
    task = asyncio.ensure_future(probe())
    done, _ = await asyncio.wait({task}, timeout=CHECK_TIMEOUT)
    if not done:
        task.add_done_callback(lambda finished: finished.cancelled() or finished.exception())
        log.warning("Health check: %s did not answer within %s s.", name, CHECK_TIMEOUT)
        return "failed: no answer"
    if task.exception() is not None:
        log.warning("Health check: %s failed: %r", name, task.exception())
        return f"failed: {type(task.exception()).__name__}"
    return "ok"


@never_cache
@require_GET
async def health(request):
    # Its own thread, so that a database that hangs never holds up the thread other requests share.
    database = await _check("database", sync_to_async(_database_check, thread_sensitive=False))
    # A group_send to a group nobody joins is one real round trip to the layer.
    layer = get_channel_layer()
    channel_layer = await _check("channel layer", lambda: layer.group_send("health", {"type": "health.ping"}))
    ok = database == "ok" and channel_layer == "ok"
    return JsonResponse({"database": database, "channel_layer": channel_layer}, status=200 if ok else 503)
