"""JSON endpoints for conversations and their messages (docs/protocol.md)."""

from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from chat import previews, search, services
from chat.models import Conversation
from chatterbox.api import api_view, body_text, json_body
from chatterbox.errors import Invalid
from moderation import limits

HISTORY_PAGE_DEFAULT = 50
CHANNEL_SEARCH_MAX = 64
CHANNEL_LIST_MAX = 200


def _flag(body: dict, field: str) -> bool | None:
    value = body.get(field)
    if value is not None and not isinstance(value, bool):
        raise Invalid(f"{field} must be true or false.", field=field)
    return value


def _moment(body: dict, field: str):
    """Return an aware datetime from ISO 8601 text, or None for null."""
    value = body.get(field)
    if value is None:
        return None
    try:
        moment = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:  # well formed, but no such date
        moment = None
    if moment is None:
        raise Invalid(f"{field} must be an ISO 8601 time, e.g. 2030-01-31T12:00:00Z, or null.", field=field)
    if timezone.is_naive(moment):
        raise Invalid(f"{field} needs a time zone (Z or +hh:mm).", field=field)
    return moment


def _usernames(body: dict) -> list[str]:
    value = body.get("members", [])
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise Invalid("members must be a list of usernames.", field="members")
    return value


def _cursor(
    request, field: str, *, default: int | None = None, low: int = 0, high: int = services.ID_MAX
) -> int | None:
    raw = request.GET.get(field)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise Invalid(f"{field} must be an integer from {low} to {high}.", field=field)
    return int(raw)


def _conversation(request, conversation_id: int, *, status: int = 200) -> JsonResponse:
    return JsonResponse(services.conversation_for(user=request.user, conversation_id=conversation_id), status=status)


@api_view("GET", "POST")
def conversations(request):
    if request.method == "GET":
        return JsonResponse(services.conversations_for(user=request.user), safe=False)
    body = json_body(request)
    kind = body.get("kind")
    if not isinstance(kind, str):
        raise Invalid("kind is required: direct, group or channel.", field="kind")
    members = _usernames(body)
    limits.rate_check("conversations", user=request.user, address=limits.client_address(request))
    if kind == "group" and members:
        limits.rate_check("invitations", user=request.user, address=limits.client_address(request), cost=len(members))
    conversation, created = services.conversation_create(
        creator=request.user,
        kind=kind,
        name=body_text(body, "name", required=kind in {"group", "channel"}),
        topic=body_text(body, "topic"),
        members=members,
        encrypted=_flag(body, "encrypted"),
    )
    return _conversation(request, conversation.pk, status=201 if created else 200)


@api_view("GET", "PATCH")
def conversation(request, conversation_id: int):
    if request.method == "PATCH":
        body = json_body(request)
        muted = _flag(body, "muted")
        changes = {field: value for field, value in body.items() if field != "muted"}
        # Checked first, so that a refused change leaves the mute setting alone too.
        if changes:
            services.conversation_update(actor=request.user, conversation_id=conversation_id, changes=changes)
        if muted is not None:
            services.membership_mute(user=request.user, conversation_id=conversation_id, muted=muted)
    return _conversation(request, conversation_id)


@api_view("POST")
def conversation_join(request, conversation_id: int):
    conversation, joined = services.channel_join(user=request.user, conversation_id=conversation_id)
    return _conversation(request, conversation.pk, status=201 if joined else 200)


@api_view("POST")
def conversation_members(request, conversation_id: int):
    username = body_text(json_body(request), "username", required=True)
    limits.rate_check("invitations", user=request.user, address=limits.client_address(request))
    conversation, added = services.membership_add(
        actor=request.user, conversation_id=conversation_id, username=username
    )
    return _conversation(request, conversation.pk, status=201 if added else 200)


@api_view("DELETE", "PATCH")
def conversation_member(request, conversation_id: int, username: str):
    if request.method == "PATCH":
        body = json_body(request)
        unknown = sorted(set(body) - {"role", "muted_until"})
        if unknown or not body:
            raise Invalid("Send role and/or muted_until.")
        if "muted_until" in body:
            services.membership_mute_until(
                actor=request.user,
                conversation_id=conversation_id,
                username=username,
                muted_until=_moment(body, "muted_until"),
            )
        if "role" in body:
            role = body_text(body, "role", required=True)
            services.membership_set_role(
                actor=request.user, conversation_id=conversation_id, username=username, role=role
            )
        return _conversation(request, conversation_id)
    services.membership_remove(actor=request.user, conversation_id=conversation_id, username=username)
    return HttpResponse(status=204)


@api_view("GET")
def conversation_messages(request, conversation_id: int):
    messages, has_more = services.history_page(
        user=request.user,
        conversation_id=conversation_id,
        after=_cursor(request, "after"),
        before=_cursor(request, "before"),
        limit=_cursor(request, "limit", default=HISTORY_PAGE_DEFAULT, low=1, high=services.HISTORY_PAGE_MAX),
    )
    return JsonResponse({"messages": messages, "has_more": has_more})


@api_view("POST")
def conversation_read(request, conversation_id: int):
    up_to = json_body(request).get("up_to")
    if not isinstance(up_to, int) or isinstance(up_to, bool) or not 0 <= up_to <= services.ID_MAX:
        raise Invalid("up_to must be a message id.", field="up_to")
    last_read = services.read_mark(user=request.user, conversation_id=conversation_id, up_to=up_to)
    return JsonResponse({"conversation": conversation_id, "up_to": last_read})


@api_view("GET")
def channels(request):
    query = request.GET.get("q", "").strip()
    if len(query) > CHANNEL_SEARCH_MAX:
        raise Invalid(f"The search text is too long (at most {CHANNEL_SEARCH_MAX} characters).", field="q")
    rows = Conversation.objects.channels_for(request.user)
    if query:
        rows = rows.filter(name__icontains=query)
    listing = [
        {"id": row.pk, "name": row.name, "topic": row.topic, "member_count": row.member_count, "joined": row.joined}
        for row in rows[:CHANNEL_LIST_MAX]
    ]
    return JsonResponse(listing, safe=False)


@api_view("GET")
def message_search(request):
    results, has_more = search.message_search(
        user=request.user,
        query=request.GET.get("q", ""),
        conversation_id=_cursor(request, "conversation", low=1),
        sender=request.GET.get("sender", "").strip() or None,
        before=request.GET.get("before", "").strip() or None,
        after=request.GET.get("after", "").strip() or None,
        page=_cursor(request, "page", default=1, low=1, high=search.PAGE_MAX),
    )
    return JsonResponse({"results": results, "has_more": has_more})


@api_view("GET")
def message_preview(request, message_id: int):
    preview = previews.preview_for_message(user=request.user, message_id=message_id)
    return JsonResponse(preview) if preview else HttpResponse(status=204)
