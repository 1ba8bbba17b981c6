"""JSON endpoints for blocks and reports (docs/protocol.md "Moderation")."""

from django.http import HttpResponse, JsonResponse

from accounts.api import user_json
from chat.events import timestamp
from chatterbox.api import api_view, body_text, json_body
from chatterbox.errors import Invalid
from moderation import limits, services


def _block_json(block) -> dict:
    return {"user": user_json(block.blocked), "created_at": timestamp(block.created_at)}


@api_view("GET", "POST")
def blocks(request):
    if request.method == "GET":
        return JsonResponse([_block_json(block) for block in services.blocks_of(user=request.user)], safe=False)
    username = body_text(json_body(request), "username", required=True)
    block, created = services.block_create(blocker=request.user, username=username)
    return JsonResponse(_block_json(block), status=201 if created else 200)


@api_view("DELETE")
def block(request, username: str):
    services.block_delete(blocker=request.user, username=username)
    return HttpResponse(status=204)


@api_view("POST")
def reports(request):
    body = json_body(request)
    message_id = body.get("message")
    if message_id is not None and (not isinstance(message_id, int) or isinstance(message_id, bool) or message_id < 1):
        raise Invalid("message must be a message id.", field="message")
    limits.rate_check("reports", user=request.user, address=limits.client_address(request))
    report, created = services.report_create(
        reporter=request.user,
        reason=body_text(body, "reason", required=True),
        message_id=message_id,
        username=body_text(body, "user") or None,
        note=body_text(body, "note"),
        evidence=body.get("evidence"),
    )
    return JsonResponse(services.report_json(report), status=201 if created else 200)
