"""The HTTP side of the client: allauth's form login (with 2FA), API tokens, and the JSON API.

Built on the standard library (`urllib`, `http.cookiejar`), so it is synchronous; the asyncio
client calls it in a worker thread. Every error answer becomes an exception from
`client.errors`.
"""

from __future__ import annotations

import html
import json
import mimetypes
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from http.cookiejar import CookieJar
from typing import Any

from client.errors import (
    ConnectionFailed,
    LoginFailed,
    RateLimitedError,
    ServerError,
    TwoFactorRequired,
    error_from,
)

USER_AGENT = "chatterbox-python/0.1"
LOGIN_PATH = "/accounts/login/"
TWO_FACTOR_PATH = "/accounts/2fa/authenticate/"
TOKENS_PATH = "/profile/tokens/"
LOGOUT_PATH = "/accounts/logout/"
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
NEW_TOKEN = re.compile(r'id="new-token"[^>]*\bvalue="(cbx_[^"]+)"')
FORM_ERROR = re.compile(r'role="alert">(.*?)</', re.S)
TAGS = re.compile(r"<[^>]+>")

CodeProvider = Callable[[], str]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand 3xx answers back: the login flow needs to see where allauth sends it."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def normalize_server(url: str) -> str:
    """Return the server's base URL without a trailing slash; ValueError if it is not http(s)."""
    url = (url or "").strip().rstrip("/")
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise ValueError(f"The server must be an http:// or https:// URL, not {url!r}.")
    return url


class Response:
    """An HTTP answer: status, headers and body."""

    def __init__(self, status: int, headers, body: bytes, url: str):
        self.status = status
        self.headers = headers
        self.body = body
        self.url = url

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise ConnectionFailed(f"{self.url} did not answer JSON (status {self.status}).") from None


class HttpApi:
    """The JSON API of one server, authenticated by a token or by a session cookie.

    >>> api = HttpApi("http://127.0.0.1:8000", token="cbx_...")
    >>> api.me()["username"]
    """

    def __init__(self, server: str, *, token: str | None = None, timeout: float = 30.0):
        self.server = normalize_server(server)
        self.token = token
        self.timeout = timeout
        self.cookies = CookieJar()
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirect())

    # Plumbing

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
    ) -> Response:
        """Send one request and return the answer whatever its status; ConnectionFailed if unreachable."""
        url = path if path.startswith(("http://", "https://")) else self.server + path
        request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 - http(s) only, checked above
        request.add_header("User-Agent", USER_AGENT)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        if auth and self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        elif method not in {"GET", "HEAD"}:
            # A session needs Django's CSRF token (and, over HTTPS, a Referer of the same origin).
            request.add_header("X-CSRFToken", self.csrf_token() or "")
            request.add_header("Referer", self.server + "/")
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                return Response(answer.status, answer.headers, answer.read(), url)
        except urllib.error.HTTPError as answer:
            return Response(answer.code, answer.headers, answer.read(), url)
        except (TimeoutError, urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ConnectionFailed(f"Cannot reach {self.server}: {reason}") from None

    def call(self, method: str, path: str, payload: Any = None, *, expect: tuple[int, ...] = (200, 201, 204)) -> Any:
        """Call the JSON API; return the decoded answer (None for 204) or raise the mapped error."""
        body = None if payload is None else json.dumps(payload).encode()
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        return self._decode(self.request(method, path, body=body, headers=headers), expect)

    def _decode(self, response: Response, expect: tuple[int, ...]) -> Any:
        if response.status in expect:
            return None if response.status == 204 or not response.body else response.json()
        content_type = response.headers.get("Content-Type", "")
        if content_type.startswith("application/json"):
            raise error_from(response.json(), status=response.status)
        if response.status == 429:
            raise RateLimitedError("Too many requests; slow down.", status=429)
        raise ServerError(f"{response.url} answered {response.status}.", status=response.status)

    def csrf_token(self) -> str | None:
        return next((cookie.value for cookie in self.cookies if cookie.name == "csrftoken"), None)

    def session_cookie(self) -> str | None:
        return next((cookie.value for cookie in self.cookies if cookie.name == "sessionid"), None)

    # Logging in

    def _form(self, path: str) -> str:
        page = self.request("GET", path, auth=False)
        if page.status != 200:
            raise ConnectionFailed(f"{self.server}{path} answered {page.status}; is this a Chatterbox server?")
        match = CSRF_INPUT.search(page.text)
        if not match:
            raise ConnectionFailed(f"{self.server}{path} has no login form; is this a Chatterbox server?")
        return match.group(1)

    def _post_form(self, path: str, fields: dict[str, str]) -> Response:
        csrf = self._form(path)
        body = urllib.parse.urlencode({"csrfmiddlewaretoken": csrf, **fields}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Referer": self.server + path}
        return self.request("POST", path, body=body, headers=headers, auth=False)

    def login(self, login: str, password: str, *, code: str | CodeProvider | None = None) -> dict:
        """Sign in with allauth's form (username or email); return the user (`/api/me/`).

        `code` is a TOTP or recovery code, or a function asked for one only when the account
        has two-factor authentication. Without it such an account raises TwoFactorRequired.
        """
        answer = self._post_form(LOGIN_PATH, {"login": login, "password": password})
        if answer.status == 429:
            raise RateLimitedError("Too many failed logins; wait a few minutes.", status=429)
        if answer.status != 302:
            raise LoginFailed(_form_error(answer.text) or "The username/email or password is not right.")
        location = urllib.parse.urlsplit(answer.headers.get("Location", "")).path
        if location == TWO_FACTOR_PATH:
            if code is None:
                raise TwoFactorRequired("This account has two-factor authentication: give a TOTP or recovery code.")
            answer = self._post_form(TWO_FACTOR_PATH, {"code": code() if callable(code) else code})
            if answer.status != 302:
                raise LoginFailed(_form_error(answer.text) or "The two-factor code was not accepted.")
        if not self.session_cookie():
            raise LoginFailed("The server did not start a session.")
        self.token = None
        return self.me()

    def create_token(self, name: str) -> str:
        """Make an API token on the profile page with the signed-in session; return its secret.

        Tokens are accepted only on /api/ and /ws/, so minting one always takes a session.
        """
        if not self.session_cookie():
            raise LoginFailed("Creating a token needs a signed-in session: log in with a password first.")
        answer = self._post_form(TOKENS_PATH, {"name": name})
        match = NEW_TOKEN.search(answer.text) if answer.status == 200 else None
        if not match:
            raise ServerError(_form_error(answer.text) or f"The token page answered {answer.status}.")
        return html.unescape(match.group(1))

    def logout(self) -> None:
        """End the session (a token stays valid until revoked on the profile page)."""
        if self.session_cookie():
            self._post_form(LOGOUT_PATH, {})
        self.cookies.clear()

    # The JSON API (docs/protocol.md)

    def me(self) -> dict:
        return self.call("GET", "/api/me/")

    def update_me(self, **profile: str) -> dict:
        return self.call("PATCH", "/api/me/", profile)

    def users(self, query: str) -> list[dict]:
        return self.call("GET", "/api/users/?" + urllib.parse.urlencode({"q": query}))

    def channels(self, query: str = "") -> list[dict]:
        return self.call("GET", "/api/channels/?" + urllib.parse.urlencode({"q": query}))

    def conversations(self) -> list[dict]:
        return self.call("GET", "/api/conversations/")

    def conversation(self, conversation_id: int) -> dict:
        return self.call("GET", f"/api/conversations/{int(conversation_id)}/")

    def direct(self, username: str) -> dict:
        return self.call("POST", "/api/conversations/", {"kind": "direct", "members": [username]})

    def create_group(self, name: str, members: list[str], *, encrypted: bool = True) -> dict:
        payload = {"kind": "group", "name": name, "members": members, "encrypted": encrypted}
        return self.call("POST", "/api/conversations/", payload)

    def create_channel(self, name: str, topic: str = "") -> dict:
        return self.call("POST", "/api/conversations/", {"kind": "channel", "name": name, "topic": topic})

    def join(self, conversation_id: int) -> dict:
        return self.call("POST", f"/api/conversations/{int(conversation_id)}/join/")

    def invite(self, conversation_id: int, username: str) -> dict:
        return self.call("POST", f"/api/conversations/{int(conversation_id)}/members/", {"username": username})

    def leave(self, conversation_id: int, username: str) -> None:
        quoted = urllib.parse.quote(username)
        self.call("DELETE", f"/api/conversations/{int(conversation_id)}/members/{quoted}/")

    def messages(
        self, conversation_id: int, *, before: int | None = None, after: int | None = None, limit: int = 50
    ) -> dict:
        """Return one page of history: `{messages, has_more}`, oldest first."""
        query = {"limit": limit, **({"before": before} if before else {}), **({"after": after} if after else {})}
        return self.call("GET", f"/api/conversations/{int(conversation_id)}/messages/?" + urllib.parse.urlencode(query))

    def mark_read(self, conversation_id: int, up_to: int) -> dict:
        return self.call("POST", f"/api/conversations/{int(conversation_id)}/read/", {"up_to": up_to})

    # Moderation: blocks and reports

    def blocks(self) -> list[dict]:
        """Return the people this user blocked."""
        return self.call("GET", "/api/blocks/")

    def block(self, username: str) -> dict:
        """Block someone: they can no longer start or write in a direct conversation with you."""
        return self.call("POST", "/api/blocks/", {"username": username})

    def unblock(self, username: str) -> None:
        self.call("DELETE", f"/api/blocks/{urllib.parse.quote(username)}/")

    def report(
        self,
        *,
        reason: str,
        message: int | None = None,
        user: str | None = None,
        note: str = "",
        evidence: dict | None = None,
    ) -> dict:
        """Report a message or a person to the moderators; return `{id, status}`.

        For an encrypted message `evidence` is `{text, key}`: the text you read and the message
        key, which the server checks against the ciphertext it stored.
        """
        payload: dict = {"reason": reason, "note": note}
        if message is not None:
            payload["message"] = int(message)
        if user is not None:
            payload["user"] = user
        if evidence is not None:
            payload["evidence"] = evidence
        return self.call("POST", "/api/reports/", payload)

    def key_backup(self) -> dict | None:
        """Return this user's key backup, or None if they have not set up encryption."""
        try:
            return self.call("GET", "/api/keys/")
        except ServerError as error:
            if error.code == "not_found":
                return None
            raise

    def put_key_backup(self, backup: dict) -> dict:
        return self.call("PUT", "/api/keys/", backup)

    def public_key(self, username: str) -> str | None:
        try:
            return self.call("GET", f"/api/keys/{urllib.parse.quote(username)}/")["public_key"]
        except ServerError as error:
            if error.code == "not_found":
                return None
            raise

    def upload(
        self,
        conversation_id: int,
        data: bytes,
        *,
        name: str,
        content_type: str | None = None,
        fields: dict[str, str] | None = None,
    ) -> dict:
        """Upload a file to a conversation (multipart); return `{id, url, content_type, size, name, ...}`.

        `fields` adds form fields, e.g. `{"kind": "picture"}` (docs/protocol.md "Attachments").
        """
        content_type = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        boundary = uuid.uuid4().hex
        safe_name = name.replace('"', "").replace("\r", "").replace("\n", "") or "file"
        parts = [
            (f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n{value}\r\n').encode()
            for field, value in {"conversation": int(conversation_id), **(fields or {})}.items()
        ]
        parts += [
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{safe_name}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n"
            ).encode(),
            data,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Accept": "application/json"}
        return self._decode(self.request("POST", "/api/attachments/", body=b"".join(parts), headers=headers), (201,))

    def download(self, url: str) -> bytes:
        """Return the bytes of an attachment (or thumbnail) URL as a member sees them."""
        answer = self.request("GET", url)
        if answer.status != 200:
            self._decode(answer, (200,))
        return answer.body


def _form_error(page: str) -> str:
    """Return the first error message an allauth form shows, as text."""
    match = FORM_ERROR.search(page)
    if not match:
        return ""
    return html.unescape(TAGS.sub(" ", match.group(1))).strip()
