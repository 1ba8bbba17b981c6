"""A small synchronous facade for scripts: the asyncio client runs in a thread of its own.

    from client import SyncClient
    with SyncClient("http://127.0.0.1:8000", token="cbx_...") as chat:
        chat.send("@bob", "hi")
        for event in chat.events(timeout=30):
            ...

Every method of `Client` is available and blocks until done; `events()` yields events as
they arrive. The desktop app and the tests use it too, since Tkinter and Playwright each
keep the main thread.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from client.client import Client, Event


class SyncClient:
    """Run a `Client` on a private event loop in a background thread."""

    def __init__(self, server: str | None = None, *, client_factory: Callable[[], Client] | None = None, **options):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="chatterbox-client", daemon=True)
        self._thread.start()
        self._events: queue.Queue[Event] = queue.Queue()
        factory = client_factory or (lambda: Client(server, **options))
        self.client: Client = self._run(self._make(factory))
        self.client.add_listener(self._events.put)

    @staticmethod
    async def _make(factory: Callable[[], Client]) -> Client:
        return factory()

    @classmethod
    def login(cls, server: str, login: str, password: str, *, code=None, **options) -> SyncClient:
        """Sign in with username or email and password (and a 2FA code); see `Client.login`."""
        holder: dict[str, Client] = {}

        def factory() -> Client:
            return holder["client"]

        facade = cls.__new__(cls)
        facade._loop = asyncio.new_event_loop()
        facade._thread = threading.Thread(target=facade._loop.run_forever, name="chatterbox-client", daemon=True)
        facade._thread.start()
        facade._events = queue.Queue()
        try:
            holder["client"] = facade._run(Client.login(server, login, password, code=code, **options))
        except BaseException:
            facade._stop_loop()
            raise
        facade.client = facade._run(cls._make(factory))
        facade.client.add_listener(facade._events.put)
        return facade

    def _run(self, coroutine, timeout: float | None = None):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def call_soon(self, function: Callable, *args) -> None:
        """Run a plain function in the client's loop (e.g. `chat.client.socket.drop`)."""
        self._loop.call_soon_threadsafe(function, *args)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.__dict__.get("client"), name)
        if inspect.iscoroutinefunction(attribute):

            @functools.wraps(attribute)
            def blocking(*args, timeout: float | None = None, **kwargs):
                return self._run(attribute(*args, **kwargs), timeout)

            return blocking
        return attribute

    def events(self, *, timeout: float | None = None) -> Iterator[Event]:
        """Yield events; stop after `timeout` seconds without one, or when the client stops."""
        while True:
            try:
                event = self._events.get(timeout=timeout)
            except queue.Empty:
                return
            yield event
            if event.type == "state" and event.data.get("state") in {"signed_out", "banned", "stopped"}:
                return

    def poll_events(self) -> list[Event]:
        """Return the events waiting now, without blocking (for GUI loops)."""
        found = []
        while True:
            try:
                found.append(self._events.get_nowait())
            except queue.Empty:
                return found

    def wait_for(self, predicate: Callable[[Event], bool], *, timeout: float = 30.0) -> Event:
        """Return the first event that matches; TimeoutError if none comes in time. Others are dropped."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self._events.get(timeout=left)
            except queue.Empty:
                break
            if predicate(event):
                return event
        raise TimeoutError(f"No matching event within {timeout} s.")

    def close(self) -> None:
        """Close the socket and stop the loop thread; closing again does nothing."""
        if not self._thread.is_alive():
            return
        try:
            self._run(self.client.close(), 15)
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> SyncClient:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
