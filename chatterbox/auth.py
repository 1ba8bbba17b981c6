"""Bearer-token authentication for non-browser clients, over HTTP and WebSocket."""

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from django.utils.functional import SimpleLazyObject

from accounts.tokens import token_user


def bearer_token(value: str | bytes | None) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if value and value.startswith("Bearer "):
        return value[len("Bearer ") :].strip()
    return None


class TokenAuthenticationMiddleware:
    """Sign the request in by its bearer token; such requests carry no cookie, so need no CSRF token."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raw = bearer_token(request.headers.get("Authorization"))
        if raw is not None:
            user = token_user(raw)
            if user is not None:
                request.user = SimpleLazyObject(lambda: user)
                # A bearer token is not sent by the browser on its own, so cross-site forgery can't use it.
                request._dont_enforce_csrf_checks = True
        return self.get_response(request)


class TokenAuthMiddleware:
    """For WebSocket handshakes: an `Authorization: Bearer` header wins over the session cookie."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers", []))
        raw = bearer_token(headers.get(b"authorization"))
        if raw is not None:
            user = await database_sync_to_async(token_user)(raw)
            if user is not None:
                scope = {**scope, "user": user}
        return await self.inner(scope, receive, send)


# Named like Channels' own AuthMiddlewareStack.
def TokenOrSessionAuthMiddlewareStack(inner):
    return AuthMiddlewareStack(TokenAuthMiddleware(inner))
