from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts import services
from accounts.avatars import InvalidAvatar, avatar_default_svg
from accounts.forms import AvatarForm, ProfileForm
from accounts.models import User


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
    context = {"form": form, "avatar_form": avatar_form}
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
