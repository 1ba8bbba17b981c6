"""Sessions and the credentials a socket was opened with: checking them and ending them."""

from importlib import import_module

from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.models import Session
from django.db import connection, transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts.models import ApiToken, User
from accounts.signals import signed_out


def session_store(session_key: str | None = None):
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key)


def socket_credentials_refused(*, user, session_key: str | None, token_id: int | None) -> int | None:
    """Return why a socket opened as this user may not stay (4403 disabled, 4401 signed out), or None.

    A session socket costs one query: the session row still there and unexpired, the user still
    active, and the password unchanged since the handshake checked the session's hash. Anything
    else (a token, a changed password) takes the full check.
    """
    if token_id is None and session_key:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT s.session_data, u.is_active, u.password FROM {User._meta.db_table} u "  # noqa: S608
                f"LEFT JOIN {Session._meta.db_table} s ON s.session_key = %s AND s.expire_date > %s WHERE u.id = %s",
                [session_key, connection.ops.adapt_datetimefield_value(timezone.now()), user.pk],
            )
            row = cursor.fetchone()
        if row is None or not row[1]:
            return 4403
        session_data, _, password = row
        if session_data is None:
            return 4401
        if password == user.password:
            data = session_store().decode(session_data)
            return None if str(data.get(SESSION_KEY)) == str(user.pk) else 4401
    elif not User.objects.filter(pk=user.pk, is_active=True).exists():
        return 4403
    return None if credentials_valid(user_id=user.pk, session_key=session_key, token_id=token_id) else 4401


def credentials_valid(*, user_id: int, session_key: str | None, token_id: int | None) -> bool:
    """Whether the session or token a socket was opened with still signs this user in."""
    if token_id is not None:
        return ApiToken.objects.filter(pk=token_id, user_id=user_id, user__is_active=True).exists()
    if not session_key:
        return False
    data = session_store(session_key).load()
    if str(data.get(SESSION_KEY)) != str(user_id):
        return False
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return False
    stored = data.get(HASH_SESSION_KEY) or ""
    hashes = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
    return any(constant_time_compare(stored, expected) for expected in hashes)


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
