"""allauth's hooks: account emails speak with the site's configured name, not its host and port."""

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context
from django.conf import settings
from django.contrib.sites.requests import RequestSite


def current_site(request) -> RequestSite:
    """Return the request's site (its domain) under the name from the SITE_NAME setting."""
    site = RequestSite(request)
    site.name = settings.SITE_NAME
    return site


class AccountAdapter(DefaultAccountAdapter):
    def format_email_subject(self, subject: str) -> str:
        return f"[{settings.SITE_NAME}] {subject}"

    def send_mail(self, template_prefix: str, email: str, context_data: dict) -> None:
        # Without django.contrib.sites allauth names the site after the request's host ("127.0.0.1:8000").
        super().send_mail(template_prefix, email, {"current_site": current_site(context.request), **context_data})
