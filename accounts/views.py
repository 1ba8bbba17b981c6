from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts import services, sessions, tokens
from accounts.avatars import InvalidAvatar, avatar_default_svg
from accounts.forms import AvatarForm, ProfileForm
from accounts.models import ApiToken, User
from chatterbox.errors import Invalid
from moderation import services as moderation_services


@login_required
def profile(request):
    """Edit one's own display name, status, bio and picture."""
    form = ProfileForm(instance=request.user)
    avatar_form = AvatarForm()
    if request.method == "POST":
        if "avatar" in request.FILES or "avatar_upload" in request.POST:
            avatar_form = AvatarForm(request.POST, request.FILES)
            if avatar_form.is_valid():
                try:
                    services.avatar_set(user=request.user, upload=avatar_form.cleaned_data["avatar"])
                except InvalidAvatar as error:
                    avatar_form.add_error("avatar", str(error))
                else:
                    messages.success(request, "Your profile picture was updated.")
                    return redirect("profile")
        else:
            form = ProfileForm(request.POST, instance=request.user)
            if form.is_valid():
                services.profile_update(user=request.user, changes=form.cleaned_data)
                messages.success(request, "Your profile was saved.")
                return redirect("profile")
    status = 400 if form.errors or avatar_form.errors else 200
    context = {"form": form, "avatar_form": avatar_form, **moderation_services.profile_context(user=request.user)}
    return render(request, "accounts/profile.html", context, status=status)


@login_required
@require_POST
def avatar_remove(request):
    services.avatar_clear(user=request.user)
    messages.success(request, "Your profile picture was removed.")
    return redirect("profile")


@login_required
@require_GET
def avatar(request, user_id: int):
    """Serve a user's picture, or a generated one with their initials."""
    user = get_object_or_404(User, pk=user_id)
    if user.avatar:
        with user.avatar.open("rb") as picture:
            response = HttpResponse(picture.read(), content_type="image/webp")
    else:
        svg = avatar_default_svg(initials=user.initials, seed=user.username)
        response = HttpResponse(svg, content_type="image/svg+xml")
    # The URL carries the version, so a cached copy is never stale.
    response["Cache-Control"] = "private, max-age=86400"
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response


@login_required
def api_tokens(request):
    """List, create and revoke API tokens; a new token's secret is shown once, here."""
    new_secret = error = None
    if request.method == "POST":
        if "revoke" in request.POST:
            try:
                token_id = int(request.POST["revoke"])
            except ValueError:
                error = "No such token."
            else:
                tokens.token_revoke(user=request.user, token_id=token_id)
                messages.success(request, "The token was revoked.")
                return redirect("api_tokens")
        else:
            try:
                _, new_secret = tokens.token_create(user=request.user, name=request.POST.get("name", ""))
            except Invalid as invalid:
                error = invalid.detail
    context = {"tokens": ApiToken.objects.for_user(request.user), "new_secret": new_secret, "error": error}
    return render(request, "accounts/api_tokens.html", context, status=400 if error else 200)


@login_required
@require_POST
def sessions_end_others(request):
    """Sign out everywhere but in this browser: other sessions' pages and sockets end at once."""
    sessions.sessions_end(user=request.user, keep_session_key=request.session.session_key)
    messages.success(request, "You were signed out everywhere else.")
    return redirect("profile")
