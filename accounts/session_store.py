"""The database session store, telling the real-time layer when a session ends or changes its key.

Every way a session ends (logout, "sign out everywhere", the sessions page, an invalid hash)
goes through `delete`, so its open sockets are closed at once, whichever door ended it.
"""

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import transaction

from accounts.signals import session_moved, signed_out


class SessionStore(DatabaseSessionStore):
    _cycling = False

    def cycle_key(self):
        old = self.session_key
        # Django cycles an anonymous session at login; only a signed-in one can have sockets.
        signed_in = SESSION_KEY in self
        # The old key is deleted on the way; its sockets move rather than close.
        self._cycling = True
        try:
            super().cycle_key()
        finally:
            self._cycling = False
        new = self.session_key
        if signed_in and old and new and old != new:
            transaction.on_commit(lambda: session_moved.send(sender=SessionStore, old_key=old, new_key=new))

    def delete(self, session_key=None):
        key = session_key or self.session_key
        super().delete(session_key)
        if key and not self._cycling:
            transaction.on_commit(lambda: signed_out.send(sender=SessionStore, session_keys=[key]))
