"""Values every template may use."""

from django.conf import settings


def site(request) -> dict:
    """Return the site's name and the address people can write to for help (empty: none)."""
    return {"site_name": settings.SITE_NAME, "support_email": settings.SUPPORT_EMAIL}
