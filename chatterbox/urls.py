from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path, re_path

from chatterbox.views import page_not_found

admin.site.site_header = "Chatterbox administration"
admin.site.site_title = "Chatterbox admin"
# The admin signs in through allauth, so its rate limits and two-factor step apply there too.
admin.site.login = secure_admin_login(admin.site.login)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("", include("accounts.urls")),
    path("", include("chat.urls")),
    path("", include("moderation.urls")),
    # Unknown API paths answer JSON, in DEBUG too.
    re_path(r"^api/", page_not_found),
]


handler400 = "chatterbox.views.bad_request"
handler404 = "chatterbox.views.page_not_found"
handler500 = "chatterbox.views.server_error"
