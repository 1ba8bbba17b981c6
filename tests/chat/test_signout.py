"""A socket ends with the credentials it was opened with: logout, password change, "sign out
everywhere", token revocation and a two-factor change close it with 4401 at once."""

import json
import re
import time

import pyotp
import pytest
from allauth.mfa.models import Authenticator
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.utils import timezone

from accounts import tokens
from accounts.models import ApiToken, User
from accounts.sessions import session_store, socket_signin, token_refused
from chatterbox.asgi import application
from tests.chat.conftest import FRAME_TIMEOUT, ORIGIN, Socket, communicator, db
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

NEW_PASSWORD = "a brand new secret 42"


def signed_in_client(user, *, through_login_page: bool = False) -> Client:
    client = Client()
    if through_login_page:
        response = client.post("/accounts/login/", {"login": user.username, "password": PASSWORD})
        assert response.status_code == 302, response.content[:300]
    else:
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def cookie_of(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def token_headers(secret: str) -> list:
    return [(b"host", b"127.0.0.1"), (b"origin", ORIGIN), (b"authorization", f"Bearer {secret}".encode())]


async def open_socket(*, cookie: str | None = None, secret: str | None = None) -> Socket:
    if secret:
        socket = Socket(WebsocketCommunicator(application, "/ws/", headers=token_headers(secret)))
    else:
        socket = Socket(communicator(cookie=cookie))
    connected, _ = await socket.communicator.connect(timeout=FRAME_TIMEOUT)
    assert connected
    socket.hello = await socket.receive_type("hello")
    return socket


async def assert_closed_soon(socket: Socket, code: int = 4401) -> float:
    """The socket closes with this code within a second (presence frames may come first)."""
    started = time.monotonic()
    while True:
        output = await socket.communicator.receive_output(timeout=FRAME_TIMEOUT)
        if output["type"] == "websocket.close":
            break
        assert json.loads(output["text"])["type"] == "presence", output
    assert output.get("code") == code
    socket.open = False
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"closed after {elapsed:.2f} s"
    return elapsed


@pytest.fixture
async def sockets():
    opened = []

    async def open_(**kwargs) -> Socket:
        socket = await open_socket(**kwargs)
        opened.append(socket)
        return socket

    yield open_
    for socket in opened:
        await socket.close()


async def test_logout_closes_that_sessions_socket_only(alice, sockets):
    leaving, staying = await db(signed_in_client)(alice), await db(signed_in_client)(alice)
    leaving_socket = await sockets(cookie=cookie_of(leaving))
    staying_socket = await sockets(cookie=cookie_of(staying))
    leaving_tab = await sockets(cookie=cookie_of(leaving))

    response = await db(leaving.post)("/accounts/logout/")
    assert response.status_code == 302
    await assert_closed_soon(leaving_socket)
    await assert_closed_soon(leaving_tab)
    await staying_socket.barrier()


async def test_password_change_closes_the_other_sessions_sockets(alice, sockets):
    changer, other = await db(signed_in_client)(alice), await db(signed_in_client)(alice)
    changer_socket = await sockets(cookie=cookie_of(changer))
    other_socket = await sockets(cookie=cookie_of(other))
    token_id, secret = await db(lambda: (lambda t: (t[0].pk, t[1]))(tokens.token_create(user=alice, name="bot")))()
    token_socket = await sockets(secret=secret)

    form = {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    response = await db(changer.post)("/accounts/password/change/", form)
    assert response.status_code == 302, response.content[:500]
    await assert_closed_soon(other_socket)
    # The changer's browser stays signed in (under a new session key), and so does its socket.
    await changer_socket.barrier()
    assert (await db(changer.get)("/profile/")).status_code == 200
    assert (await db(other.get)("/profile/")).status_code == 302
    # A token is not a session: it stays until revoked.
    await token_socket.barrier()
    assert await db(ApiToken.objects.filter(pk=token_id).exists)()

    # The socket followed its session to the new key: logging out now closes it.
    await db(changer.post)("/accounts/logout/")
    await assert_closed_soon(changer_socket)
    await token_socket.barrier()


async def test_sign_out_everywhere_else(alice, sockets):
    here = await db(signed_in_client)(alice, through_login_page=True)
    there = await db(signed_in_client)(alice, through_login_page=True)
    legacy = await db(signed_in_client)(alice)  # a session the sessions list does not know
    here_socket = await sockets(cookie=cookie_of(here))
    there_socket = await sockets(cookie=cookie_of(there))
    legacy_socket = await sockets(cookie=cookie_of(legacy))

    response = await db(here.post)("/profile/sessions/end/")
    assert response.status_code == 302 and response["Location"] == "/profile/"
    await assert_closed_soon(there_socket)
    await assert_closed_soon(legacy_socket)
    await here_socket.barrier()
    assert (await db(here.get)("/profile/")).status_code == 200
    response = await db(there.get)("/profile/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


async def test_sign_out_everywhere_needs_a_post(alice):
    client = await db(signed_in_client)(alice)
    assert (await db(client.get)("/profile/sessions/end/")).status_code == 405


async def test_revoking_a_token_closes_its_socket(alice, sockets):
    client = await db(signed_in_client)(alice)
    browser_socket = await sockets(cookie=cookie_of(client))
    made = [await db(tokens.token_create)(user=alice, name=name) for name in ("bot", "other bot")]
    (revoked, revoked_secret), (_, kept_secret) = made
    revoked_socket = await sockets(secret=revoked_secret)
    kept_socket = await sockets(secret=kept_secret)

    response = await db(client.post)("/profile/tokens/", {"revoke": revoked.pk})
    assert response.status_code == 302
    await assert_closed_soon(revoked_socket)
    await kept_socket.barrier()
    await browser_socket.barrier()
    # The revoked token opens nothing any more.
    socket = Socket(WebsocketCommunicator(application, "/ws/", headers=token_headers(revoked_secret)))
    await socket.communicator.connect(timeout=FRAME_TIMEOUT)
    assert await socket.closed_with() == 4401


def test_a_socket_signs_in_by_its_session_or_its_token(alice, bob):
    """socket_signin: whom the handshake's session or bearer token names, or None (4401); hold_for: whether
    they still sign that user in when the socket reads the user."""

    def user(person):
        return User.objects.get(pk=person.pk)

    key = cookie_of(signed_in_client(alice))
    credentials = socket_signin(session_key=key, raw_token=None)
    assert (credentials.user_id, credentials.token_id) == (alice.pk, None)
    assert credentials.expires > timezone.now()
    assert credentials.hold_for(user(alice))
    assert not credentials.hold_for(user(bob))
    assert socket_signin(session_key=None, raw_token=None) is None
    assert socket_signin(session_key="no-such-session", raw_token=None) is None
    # A password change signs the session out; so does ending it.
    alice.set_password(NEW_PASSWORD)
    alice.save()
    assert not credentials.hold_for(user(alice))
    key = cookie_of(signed_in_client(alice))
    session_store(key).delete()
    assert socket_signin(session_key=key, raw_token=None) is None

    # A token wins over the cookie; one that signs nobody in leaves the cookie to decide.
    bob_key = cookie_of(signed_in_client(bob))
    token, secret = tokens.token_create(user=alice, name="bot")
    by_token = socket_signin(session_key=bob_key, raw_token=secret)
    assert (by_token.user_id, by_token.token_id) == (alice.pk, token.pk)
    assert by_token.hold_for(user(alice))
    assert socket_signin(session_key=bob_key, raw_token=secret + "x").user_id == bob.pk
    assert socket_signin(session_key=None, raw_token=secret + "x") is None
    # A deactivated account signs in by neither.
    key = cookie_of(signed_in_client(alice))
    credentials = socket_signin(session_key=key, raw_token=None)
    User.objects.filter(pk=alice.pk).update(is_active=False)
    assert not credentials.hold_for(user(alice))
    assert not by_token.hold_for(user(alice))
    assert socket_signin(session_key=None, raw_token=secret) is None


def test_a_token_socket_rechecks_its_token_once_it_listens(alice, bob):
    """token_refused: a token revoked or an account banned between the sign-in and the listening."""
    token, _ = tokens.token_create(user=alice, name="bot")
    assert token_refused(user_id=alice.pk, token_id=token.pk) is None
    assert token_refused(user_id=bob.pk, token_id=token.pk) == 4401
    User.objects.filter(pk=alice.pk).update(is_active=False)
    assert token_refused(user_id=alice.pk, token_id=token.pk) == 4403
    token_id = token.pk
    token.delete()
    assert token_refused(user_id=alice.pk, token_id=token_id) == 4401


def activate_totp(client: Client) -> None:
    """Turn on TOTP through allauth's pages: confirm the password, then a code from the secret."""
    assert client.post("/accounts/reauthenticate/", {"password": PASSWORD}).status_code == 302
    page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 200
    secret = client.session["mfa.totp.secret"]
    response = client.post("/accounts/2fa/totp/activate/", {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302, response.status_code


async def test_turning_on_two_factor_signs_out_the_other_sessions(alice, sockets, settings):
    settings.MFA_TOTP_TOLERANCE = 1
    here = await db(signed_in_client)(alice, through_login_page=True)
    there = await db(signed_in_client)(alice, through_login_page=True)
    here_socket = await sockets(cookie=cookie_of(here))
    there_socket = await sockets(cookie=cookie_of(there))
    await db(activate_totp)(here)
    assert await db(Authenticator.objects.filter(user=alice, type=Authenticator.Type.TOTP).exists)()
    await assert_closed_soon(there_socket)
    await here_socket.barrier()
    assert (await db(here.get)("/profile/")).status_code == 200
    assert (await db(there.get)("/profile/")).status_code == 302


async def test_a_ban_still_closes_with_4403(alice, sockets):
    from accounts.services import user_ban

    socket = await sockets(cookie=cookie_of(await db(signed_in_client)(alice)))
    await db(user_ban)(user=alice)
    await assert_closed_soon(socket, code=4403)


async def test_a_password_reset_by_email_signs_out_everywhere(alice, sockets, mailoutbox):
    browser = await db(signed_in_client)(alice, through_login_page=True)
    browser_socket = await sockets(cookie=cookie_of(browser))
    stranger = Client()
    response = await db(stranger.post)("/accounts/password/reset/", {"email": alice.email})
    assert response.status_code == 302
    link = re.search(r"http://testserver(/accounts/password/reset/key/\S+)", mailoutbox[-1].body).group(1)
    response = await db(stranger.get)(link)
    assert response.status_code == 302
    form = {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    response = await db(stranger.post)(response["Location"], form)
    assert response.status_code == 302, response.content[:300]
    await assert_closed_soon(browser_socket)
    assert (await db(browser.get)("/profile/")).status_code == 302


def test_the_sessions_page_lists_where_one_is_signed_in(alice):
    client = signed_in_client(alice, through_login_page=True)
    signed_in_client(alice, through_login_page=True)
    page = client.get("/accounts/sessions/")
    assert page.status_code == 200
    assert page.content.decode().count("127.0.0.1") == 2
    assert "Sign out everywhere else" in client.get("/profile/").content.decode()


async def test_a_password_set_in_the_admin_signs_the_user_out(alice, make_user, sockets):
    moderator = await db(make_user)("root", is_staff=True, is_superuser=True)
    admin = await db(signed_in_client)(moderator)
    admin_socket = await sockets(cookie=cookie_of(admin))
    alice_socket = await sockets(cookie=cookie_of(await db(signed_in_client)(alice)))
    form = {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"}
    response = await db(admin.post)(f"/admin/accounts/user/{alice.pk}/password/", form)
    assert response.status_code == 302, response.content[:300]
    await assert_closed_soon(alice_socket)
    await admin_socket.barrier()
