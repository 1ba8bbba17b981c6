"""The JSON API's plumbing: one decorator, one error format, one mapping from domain errors."""

import functools
import json

from django.http import JsonResponse

from chatterbox.errors import DomainError, Invalid

HTTP_STATUS = {
    "invalid": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_member": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "too_large": 413,
    "rate_limited": 429,
    "unavailable": 503,
}


def api_error(code: str, detail: str, *, status: int | None = None, **extra) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail, **extra}, status=status or HTTP_STATUS.get(code, 400))


def api_view(*methods: str):
    """Wrap a view: JSON 401 for anonymous, 405 for other methods, domain errors as JSON."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return api_error("unauthorized", "Sign in first.")
            if request.method not in methods:
                response = api_error("method_not_allowed", f"Use {', '.join(methods)}.")
                response["Allow"] = ", ".join(methods)
                return response
            try:
                return view(request, *args, **kwargs)
            except DomainError as error:
                return api_error(error.code, error.detail, **error.extra)

        return wrapper

    return decorate


def json_body(request) -> dict:
    """Return the request's JSON object body, or raise Invalid."""
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise Invalid("The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise Invalid("Send a JSON object.")
    return body
