from django.core.exceptions import RequestDataTooBig
from django.shortcuts import render
from django.views import defaults

from chatterbox.api import api_error, is_api


def csrf_failure(request, reason=""):
    if is_api(request):
        return api_error("forbidden", f"CSRF check failed: {reason}. Send the X-CSRFToken header.")
    return render(request, "403_csrf.html", {"reason": reason}, status=403)


def bad_request(request, exception=None):
    """Django's guards (body size, field counts, bad hosts) end here."""
    if is_api(request):
        if isinstance(exception, RequestDataTooBig):
            return api_error("too_large", "The request body is too large.")
        return api_error("invalid", "The request is malformed.")
    return defaults.bad_request(request, exception)


def page_not_found(request, exception=None):
    if is_api(request):
        return api_error("not_found", "No such endpoint or object.")
    return render(request, "404.html", status=404)


def server_error(request):
    if is_api(request):
        return api_error("server_error", "Something went wrong on our side.", status=500)
    return render(request, "500.html", status=500)
