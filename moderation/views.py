"""Pages: lifting a block from the profile page."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from chatterbox.errors import DomainError
from moderation import services


@login_required
@require_POST
def block_remove(request, username: str):
    try:
        services.block_delete(blocker=request.user, username=username)
    except DomainError as error:
        messages.error(request, error.detail)
    else:
        messages.success(request, f"You unblocked {username}.")
    return redirect("profile")
