"""The JSON API's plumbing: one decorator, one error format, one mapping from domain errors."""

import functools
import json

from django.http import JsonResponse

from chatterbox.errors import DomainError, Invalid

# Everything under this path is the JSON API: bearer tokens count here (and on /ws/) only,
# and every answer, errors included, is JSON.
API_PREFIX = "/api/"

HTTP_STATUS = {
    "invalid": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_member": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "too_large": 413,
    "rate_limited": 429,
    "server_error": 500,
    "unavailable": 503,
}

# For an error answer that did not come from the API's own code (Django's guards and handlers).
STATUS_ERROR = {
    400: ("invalid", "The request is malformed."),
    401: ("unauthorized", "Sign in first."),
    403: ("forbidden", "You may not do that."),
    404: ("not_found", "No such endpoint or object."),
    405: ("method_not_allowed", "This method is not allowed here."),
    413: ("too_large", "The request body is too large."),
    429: ("rate_limited", "Too many requests; slow down."),
    503: ("unavailable", "The service is briefly unavailable; try again."),
}


def is_api(request) -> bool:
    return request.path_info.startswith(API_PREFIX)


def api_error(code: str, detail: str, *, status: int | None = None, **extra) -> JsonResponse:
    response = JsonResponse({"error": code, "detail": detail, **extra}, status=status or HTTP_STATUS.get(code, 400))
    if "retry_after" in extra:
        response["Retry-After"] = str(extra["retry_after"])
    return response


class ApiErrorMiddleware:
    """Answer every error under /api/ as JSON `{"error", "detail"}`, whoever produced it.

    The API's views map domain errors themselves (api_view); this catches the rest in one place:
    unknown URLs, methods refused by decorators, Django's guards (the request-size one answers
    413 through handler400), server errors and DEBUG's HTML error pages.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not is_api(request) or response.status_code < 400:
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        return api_error_for_status(response.status_code, allow=response.get("Allow"))


def api_error_for_status(status: int, *, allow: str | None = None) -> JsonResponse:
    """Return the JSON error for an HTTP status that Django, not an API view, chose."""
    fallback = ("server_error", "Something went wrong on our side.") if status >= 500 else ("invalid", "")
    code, detail = STATUS_ERROR.get(status, fallback)
    if allow:
        detail = f"Use {allow}."
    response = api_error(code, detail or "The request failed.", status=status)
    if allow:
        response["Allow"] = allow
    return response


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


def body_text(body: dict, field: str, *, required: bool = False) -> str:
    """Return a text field of a JSON body ("" when absent), or raise Invalid naming it."""
    value = body.get(field)
    if value is None:
        if required:
            raise Invalid(f"{field} is required.", field=field)
        return ""
    if not isinstance(value, str):
        raise Invalid(f"{field} must be a string.", field=field)
    return value


def json_body(request) -> dict:
    """Return the request's JSON object body, or raise Invalid."""
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise Invalid("The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise Invalid("Send a JSON object.")
    return body
