"""Sessions and the credentials a socket was opened with: checking them and ending them."""

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import import_module

from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.models import Session
from django.db import connection, transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.dateparse import parse_datetime

from accounts.models import ApiToken, User
from accounts.signals import signed_out
from accounts.tokens import token_find


def session_store(session_key: str | None = None):
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key)


@dataclass(frozen=True)
class SocketCredentials:
    """Whom a socket's handshake names: by a session (signed in with `session_hash`, until `expires`) or a token."""

    user_id: int
    token_id: int | None = None
    session_hash: str | None = None
    expires: datetime | None = None

    def hold_for(self, user: User | None) -> bool:
        """Whether they still sign the user in: an active account, and for a session the password it
        was signed in with (a password change signs out), as Django's own `get_user` checks."""
        if user is None or not user.is_active or user.pk != self.user_id:
            return False
        if self.token_id is not None:
            return True
        hashes = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
        return any(constant_time_compare(self.session_hash or "", expected) for expected in hashes)


def socket_signin(*, session_key: str | None, raw_token: str | None) -> SocketCredentials | None:
    """Whom a new socket's credentials name, or None (the socket closes with 4401).

    A bearer token wins over the session cookie, as on the API. A session costs one query: its
    row, unexpired. Its user is read, and checked (`SocketCredentials.hold_for`), once the
    socket listens for that user's events (chat.consumers.sockets_open).
    """
    if raw_token:
        token = token_find(raw_token)
        if token is not None:
            return SocketCredentials(user_id=token.user_id, token_id=token.pk)
    if not session_key:
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT session_data, expire_date FROM {Session._meta.db_table} "  # noqa: S608
            "WHERE session_key = %s AND expire_date > %s",
            [session_key, connection.ops.adapt_datetimefield_value(timezone.now())],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    data = session_store().decode(row[0])
    user_id = str(data.get(SESSION_KEY, ""))
    if not user_id.isdigit() or data.get(BACKEND_SESSION_KEY) not in settings.AUTHENTICATION_BACKENDS:
        return None
    expires = row[1]
    if isinstance(expires, str):  # SQLite
        expires = parse_datetime(expires)
    if timezone.is_naive(expires):
        expires = timezone.make_aware(expires, UTC)
    return SocketCredentials(user_id=int(user_id), session_hash=data.get(HASH_SESSION_KEY), expires=expires)


class SignedInSessions:
    """The sessions this process's sockets signed in with lately, so that another tab, a reload or
    a reconnect storm opens its socket without reading the session again.

    An entry is dropped when its session ends or moves, or its user is signed out or banned (the
    personal events every process's fan-out hub receives, chat.fanout), when the hub cannot
    receive, and at the latest REMEMBER_SECONDS after it was read; never past the session's
    expiry. A read that an ending overtook is not remembered (`generation`). The user row is read
    and checked on every socket all the same (`SocketCredentials.hold_for`).
    """

    REMEMBER_SECONDS = 30.0
    LIMIT = 50_000

    def __init__(self):
        self.entries: dict[str, tuple[SocketCredentials, float]] = {}
        self.generation = 0

    def find(self, session_key: str) -> SocketCredentials | None:
        tag = session_tag(session_key)
        found = self.entries.get(tag)
        if found is None:
            return None
        credentials, until = found
        if time.monotonic() > until or credentials.expires <= timezone.now():
            self.entries.pop(tag, None)
            return None
        return credentials

    def remember(self, session_key: str, credentials: SocketCredentials, *, generation: int) -> None:
        """Keep what a read found, unless an ending arrived since it began (`generation`, taken before).

        A token's credentials are never kept: a token socket reads its token every time."""
        if generation != self.generation or credentials.token_id is not None:
            return
        if len(self.entries) >= self.LIMIT:
            self.entries.clear()
        self.entries[session_tag(session_key)] = (credentials, time.monotonic() + self.REMEMBER_SECONDS)

    def event(self, group: str, event: dict) -> None:
        """Forget what a personal event ends: a session's, or every session of a user."""
        if event.get("type") not in ("chat.signed.out", "chat.session.moved", "chat.user.banned"):
            return
        self.generation += 1
        kind, _, name = group.partition(".")
        if kind == "session":
            self.entries.pop(name, None)
        elif kind == "user":
            user_id = int(name)
            for tag, (credentials, _) in list(self.entries.items()):
                if credentials.user_id == user_id:
                    del self.entries[tag]

    def clear(self) -> None:
        self.generation += 1
        self.entries.clear()


def session_tag(session_key: str) -> str:
    """Name a session without writing its key (a credential) into the channel layer."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:32]


def token_refused(*, user_id: int, token_id: int) -> int | None:
    """Why a token socket may not stay now that it listens for revocations: 4401 revoked, 4403 banned."""
    active = ApiToken.objects.filter(pk=token_id, user_id=user_id).values_list("user__is_active", flat=True).first()
    if active is None:
        return 4401
    return None if active else 4403


def sessions_end(*, user: User, keep_session_key: str | None = None) -> int:
    """Sign the user out of every session but the kept one, pages and sockets alike.

    Sessions signed in through the login page are listed (allauth's user sessions) and deleted;
    their sockets close as each is deleted. The user-wide close on commit also reaches sockets of
    sessions the list does not know (a password change has already made those invalid).
    Return how many listed sessions were ended.
    """
    ended = 0
    # Listing drops entries whose session is gone or no longer valid (as after a password change).
    for session in UserSession.objects.purge_and_list(user):
        if session.session_key != keep_session_key:
            session.end()
            ended += 1
    keep = [keep_session_key] if keep_session_key else []
    transaction.on_commit(lambda: signed_out.send(sender=User, user_id=user.pk, keep_session_keys=keep))
    return ended


def end_other_sessions(sender, *, request, user, **kwargs) -> None:
    """After a password change or a two-factor change: only this browser stays signed in."""
    keep = None
    if request.user.is_authenticated:
        # Django changed this session's hash in memory only; store it now, or listing the
        # sessions below would find this one invalid and end it too.
        request.session.save()
        keep = request.session.session_key
    sessions_end(user=user, keep_session_key=keep)


def end_all_sessions(sender, *, user, **kwargs) -> None:
    """After a password reset, made by someone who was not signed in: no session stays."""
    sessions_end(user=user)


def token_deleted(sender, *, instance, **kwargs) -> None:
    """However a token goes (revoked, its user deleted, the admin), its sockets close on commit."""
    token_id = instance.pk
    transaction.on_commit(lambda: signed_out.send(sender=ApiToken, token_ids=[token_id]))
