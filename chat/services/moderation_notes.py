"""The line a moderation change leaves in the conversation's history ("alice muted bob for 1 h").

One small function, so that it can be pointed at the shared system-message helper
(`system` messages with `{event, actor, user}`) when that exists.
"""

import json
import uuid

from accounts.models import User
from chat import events
from chat.models import Conversation, Message
from chat.services.lookups import _latest_message_id


def moderation_note_post(
    *, conversation: Conversation, event: str, actor: User | None, user: User | None = None, text: str
) -> Message:
    """Store a plaintext system message in the conversation and broadcast it on commit."""
    previous_id = _latest_message_id(conversation.pk)
    message = Message.objects.create(
        conversation=conversation, sender=None, kind=Message.Kind.SYSTEM, client_id=f"system-{uuid.uuid4()}", body=text
    )
    shared = events.message_json(message, encrypted=False)
    event_body = {
        "type": "chat.message",
        "message": shared,
        "text": json.dumps(shared),
        "keys": None,
        "audience": None,
        "prev_id": previous_id,
    }
    events.broadcast_on_commit(events.conversation_group(conversation.pk), event_body)
    return message
