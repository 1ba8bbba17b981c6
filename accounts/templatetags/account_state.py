"""Template tags for account pages: what allauth's own context leaves out."""

from allauth.account.models import EmailAddress
from django import template

register = template.Library()


@register.simple_tag
def unverified_email(user) -> EmailAddress | None:
    """Return the user's first unverified email address, or None when all are verified."""
    if not user.is_authenticated:
        return None
    return EmailAddress.objects.filter(user=user, verified=False).order_by("-primary", "id").first()
