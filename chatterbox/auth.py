"""Bearer-token authentication for non-browser clients, on the JSON API and the WebSocket only.

A token is for a bot's API access: it never counts on account, profile, token, two-factor or
admin pages, so a leaked token cannot mint tokens or change the account's credentials.
"""

from django.conf import settings
from django.http.cookie import parse_cookie
from django.utils.functional import SimpleLazyObject

from accounts.tokens import token_find
from chatterbox.api import is_api


def bearer_token(value: str | bytes | None) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if value and value.startswith("Bearer "):
        return value[len("Bearer ") :].strip()
    return None


class TokenAuthenticationMiddleware:
    """Sign an /api/ request in by its bearer token; such requests carry no cookie, so need no CSRF token.

    Every other path ignores the Authorization header: there the request is whoever its
    session cookie says, or anonymous.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.api_token_id = None
        raw = bearer_token(request.headers.get("Authorization")) if is_api(request) else None
        if raw is not None:
            token = token_find(raw)
            if token is not None:
                request.api_token_id = token.pk
                request.user = SimpleLazyObject(lambda: token.user)
                # A bearer token is not sent by the browser on its own, so cross-site forgery can't use it.
                request._dont_enforce_csrf_checks = True
        return self.get_response(request)


class SocketCredentialsMiddleware:
    """For WebSocket handshakes: the session key and the bearer token the handshake carries, in the scope.

    Nothing is read here: the consumer checks them in its first trip to the database
    (accounts.sessions.socket_signin), where a bearer token wins over the session cookie.
    """

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        cookies, authorization = [], None
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                cookies.append(value.decode("latin-1"))
            elif name == b"authorization":
                authorization = value
        session_key = parse_cookie("; ".join(cookies)).get(settings.SESSION_COOKIE_NAME) or None
        scope = {**scope, "session_key": session_key, "bearer_token": bearer_token(authorization)}
        return await self.inner(scope, receive, send)
