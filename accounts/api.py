"""JSON endpoints for accounts: /api/me/, /api/users/ and /api/users/USERNAME/."""

from django.db.models import Q
from django.http import JsonResponse

from accounts import services
from accounts.models import User
from chat.presence import users_online
from chatterbox.api import api_view, json_body
from chatterbox.errors import Invalid, NotFound

USER_SEARCH_LIMIT = 20


def user_json(user: User) -> dict:
    """Return the contract's `user` object."""
    return {
        "id": user.pk,
        "username": user.username,
        "display_name": user.name,
        "avatar_url": user.avatar_url,
    }


def profile_json(user: User) -> dict:
    return {**user_json(user), "bio": user.bio, "status": user.status}


def timestamp(moment) -> str | None:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z") if moment else None


@api_view("GET", "PATCH")
def me(request):
    if request.method == "PATCH":
        try:
            services.profile_update(user=request.user, changes=json_body(request))
        except services.ProfileInvalid as error:
            raise Invalid(str(error), fields=error.errors) from None
    return JsonResponse(profile_json(request.user))


@api_view("GET")
def users(request):
    query = request.GET.get("q", "").strip()
    if len(query) > 64:
        raise Invalid("The search text is too long (at most 64 characters).")
    # Someone who blocked you does not show up in your searches.
    found = User.objects.filter(is_active=True).exclude(blocks_made__blocked=request.user)
    if query:
        found = found.filter(Q(username__icontains=query) | Q(display_name__icontains=query))
    found = list(found[:USER_SEARCH_LIMIT])
    online = users_online([user.pk for user in found])
    answer = [{**user_json(user), "status": user.status, "online": user.pk in online} for user in found]
    return JsonResponse(answer, safe=False)


@api_view("GET")
def user_profile(request, username: str):
    """Return another person's profile card: status, bio, presence and when they were last seen."""
    user = User.objects.filter(username__iexact=username, is_active=True).first()
    if user is None:
        raise NotFound(f"There is no user @{username}.")
    online = user.pk in users_online([user.pk])
    return JsonResponse(
        {**profile_json(user), "online": online, "last_seen": None if online else timestamp(user.last_seen_at)}
    )
