"""Writes to chat, and the reads that the HTTP API and the socket share.

Every door (API, consumer, admin) calls these, so one set of rules governs them all. Each
write checks permission, writes in one transaction and schedules its broadcast on commit.
One module per entity; callers keep `from chat import services`.
"""

from chat.services.attachments import (
    attachment_claim,
    attachment_create,
    attachment_discard,
    attachment_readable,
    attachments_cleanup,
    upload_precheck,
)
from chat.services.conversations import (
    NAME_MAX,
    TOPIC_MAX,
    channel_join,
    conversation_create,
    conversation_delete,
    conversation_update,
)
from chat.services.memberships import (
    membership_add,
    membership_mute,
    membership_mute_until,
    membership_remove,
    membership_set_role,
)
from chat.services.messages import (
    CLIENT_ID_MAX,
    client_id_check,
    message_delete,
    message_edit,
    message_send,
    read_mark,
)
from chat.services.reactions import reaction_set, reactions_attach
from chat.services.reads import (
    HISTORY_PAGE_MAX,
    ID_MAX,
    conversation_for,
    conversations_for,
    history_page,
    is_member,
    member_check,
    newest_message_ids,
    socket_sessions,
)

__all__ = [
    "CLIENT_ID_MAX",
    "HISTORY_PAGE_MAX",
    "ID_MAX",
    "NAME_MAX",
    "TOPIC_MAX",
    "attachment_claim",
    "attachment_create",
    "attachment_discard",
    "attachment_readable",
    "attachments_cleanup",
    "channel_join",
    "client_id_check",
    "conversation_create",
    "conversation_delete",
    "conversation_for",
    "conversation_update",
    "conversations_for",
    "history_page",
    "is_member",
    "member_check",
    "membership_add",
    "membership_mute",
    "membership_mute_until",
    "membership_remove",
    "membership_set_role",
    "message_delete",
    "message_edit",
    "message_send",
    "newest_message_ids",
    "reaction_set",
    "reactions_attach",
    "read_mark",
    "socket_sessions",
    "upload_precheck",
]
