"""A Python client for Chatterbox: the library, the `chatterbox` command line and the desktop app.

    from client import Client, SyncClient

`Client` is asyncio (client/client.py), `SyncClient` a blocking facade (client/sync.py);
end-to-end encryption is client/e2e.py (PyNaCl, interoperable with the browser) and
client/keys.py; every error is in client/errors.py. See docs/client.md.
"""

from client.client import Client, Event, Message
from client.sync import SyncClient

__all__ = ["Client", "Event", "Message", "SyncClient"]
