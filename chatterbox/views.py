from django.shortcuts import render

from chatterbox.api import api_error


def wants_json(request) -> bool:
    return request.path.startswith("/api/")


def csrf_failure(request, reason=""):
    if wants_json(request):
        return api_error("forbidden", f"CSRF check failed: {reason}. Send the X-CSRFToken header.")
    return render(request, "403_csrf.html", {"reason": reason}, status=403)


def page_not_found(request, exception=None):
    if wants_json(request):
        return api_error("not_found", "No such endpoint or object.")
    return render(request, "404.html", status=404)


def server_error(request):
    if wants_json(request):
        return api_error("server_error", "Something went wrong on our side.", status=500)
    return render(request, "500.html", status=500)
