"""Sessions and the credentials a socket was opened with: checking them and ending them."""

from importlib import import_module

from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.models import Session
from django.db import connection, transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts.models import ApiToken, User
from accounts.signals import signed_out
from accounts.tokens import token_find


def session_store(session_key: str | None = None):
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key)


def socket_signin(*, session_key: str | None, raw_token: str | None) -> tuple[int | None, User | None, int | None]:
    """Who a new socket is: (close code or None, the user, the API token's id or None).

    A bearer token wins over the session cookie, as on the API. A session costs two queries: its
    row, unexpired, and its user, active, whose password hash must still be the one the session
    was signed in with (a password change signs out), as Django's own `get_user` checks. Refused
    with 4401: neither signs an active user in.
    """
    if raw_token:
        token = token_find(raw_token)
        if token is not None:
            return None, token.user, token.pk
    if not session_key:
        return 4401, None, None
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT session_data FROM {Session._meta.db_table} WHERE session_key = %s AND expire_date > %s",  # noqa: S608
            [session_key, connection.ops.adapt_datetimefield_value(timezone.now())],
        )
        row = cursor.fetchone()
    if row is None:
        return 4401, None, None
    data = session_store().decode(row[0])
    user_id = str(data.get(SESSION_KEY, ""))
    if not user_id.isdigit() or data.get(BACKEND_SESSION_KEY) not in settings.AUTHENTICATION_BACKENDS:
        return 4401, None, None
    # Raw: building the ORM's query cost as much as running it, on every socket that opens.
    found = User.objects.raw(
        f"SELECT * FROM {connection.ops.quote_name(User._meta.db_table)} WHERE id = %s AND is_active",  # noqa: S608
        [int(user_id)],
    )
    user = next(iter(found), None)
    if user is None or not _session_hash_matches(user, data.get(HASH_SESSION_KEY)):
        return 4401, None, None
    return None, user, None


def _session_hash_matches(user: User, stored: str | None) -> bool:
    hashes = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
    return any(constant_time_compare(stored or "", expected) for expected in hashes)


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
