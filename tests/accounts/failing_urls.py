"""Routes for tests of the API's error answers: a view that fails and one that Django's decorator guards."""

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.http import require_POST

from chatterbox.urls import urlpatterns as site_urlpatterns


def broken(request):
    raise RuntimeError("broken on purpose")


@require_POST
def post_only(request):
    return HttpResponse("ok")


urlpatterns = [
    path("api/test/broken/", broken),
    path("api/test/post-only/", post_only),
    *site_urlpatterns,
]

handler400 = "chatterbox.views.bad_request"
handler404 = "chatterbox.views.page_not_found"
handler500 = "chatterbox.views.server_error"
