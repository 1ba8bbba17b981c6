"""Emoji reactions on messages of plaintext conversations.

In an encrypted conversation a reaction is an encrypted message of kind "reaction" (see
messages.py and docs/protocol.md): the server stores it like any message and never sees the
emoji. Here, in plaintext conversations, the server stores one row per user, message and emoji.
"""

from django.db import IntegrityError, transaction

from accounts.models import User
from chat import events
from chat.models import Message, Reaction
from chat.services.lookups import _marks, _rows, _table
from chatterbox.errors import Invalid, NotFound

EMOJI_MAX_CODE_POINTS = 16
# Code points an emoji (or an emoji sequence: skin tones, ZWJ families, flags, keycaps) is made of.
EMOJI_RANGES = [
    (0x1F000, 0x1FAFF),
    (0x2600, 0x27BF),
    (0x2300, 0x23FF),
    (0x2B00, 0x2BFF),
    (0x2190, 0x21FF),
    (0x25A0, 0x25FF),
    (0x2900, 0x297F),
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x3297, 0x3299),
    (0x00A9, 0x00A9),
    (0x00AE, 0x00AE),
    (0x203C, 0x203C),
    (0x2049, 0x2049),
    (0x2122, 0x2122),
    (0x2139, 0x2139),
    (0x24C2, 0x24C2),
    (0x200D, 0x200D),  # zero-width joiner
    (0xFE0F, 0xFE0F),  # emoji presentation selector
    (0x20E3, 0x20E3),  # combining keycap
    (0xE0020, 0xE007F),  # tags (subdivision flags)
]
KEYCAP_BASES = set("0123456789#*")


def emoji_check(emoji) -> str:
    """Return the emoji if it is one emoji (or emoji sequence), else raise Invalid."""
    if not isinstance(emoji, str) or not emoji:
        raise Invalid("emoji must be an emoji.", field="emoji")
    if len(emoji) > EMOJI_MAX_CODE_POINTS:
        raise Invalid(f"emoji has at most {EMOJI_MAX_CODE_POINTS} code points.", field="emoji")
    keycap = "\u20e3" in emoji
    for char in emoji:
        point = ord(char)
        if keycap and char in KEYCAP_BASES:
            continue
        if not any(low <= point <= high for low, high in EMOJI_RANGES):
            raise Invalid("emoji must be an emoji.", field="emoji")
    return emoji


def reaction_set(*, user: User, message_id: int, emoji: str, on: bool) -> bool:
    """Add (on) or remove a reaction; broadcast and return True only if something changed."""
    emoji = emoji_check(emoji)
    if not isinstance(on, bool):
        raise Invalid("on must be true or false.", field="on")
    message = Message.objects.visible_to(user).filter(pk=message_id).first()
    if message is None:
        raise NotFound("No such message.")
    if message.conversation.encrypted:
        raise Invalid("Reactions in an encrypted conversation are encrypted messages of kind reaction.")
    if message.deleted or message.kind != Message.Kind.TEXT:
        raise Invalid("Only a message that is there can get reactions.", field="message")
    # Reacting writes to the conversation, as an encrypted reaction (a message) does: an archive
    # or an admin's mute refuses it alike. (Imported here: messages imports reads, which imports
    # this module for reactions_attach.)
    from chat.services.messages import _sender_check

    _sender_check(message.conversation, user)
    with transaction.atomic():
        if on:
            try:
                with transaction.atomic():
                    Reaction.objects.create(message=message, user=user, emoji=emoji)
            except IntegrityError:
                return False  # already there: adding twice changes nothing
        elif not Reaction.objects.filter(message=message, user=user, emoji=emoji).delete()[0]:
            return False
        event = {
            "type": "chat.reaction",
            "conversation": message.conversation_id,
            "message": message.pk,
            "user": user.pk,
            "emoji": emoji,
            "on": on,
        }
        events.conversation_broadcast_on_commit(message.conversation_id, event)
    return True


def reactions_attach(messages) -> None:
    """Set `reaction_map` ({emoji: [user ids]}, in the order given) on plaintext messages: one query."""
    plain = [message for message in messages if not message.conversation.encrypted]
    for message in plain:
        message.reaction_map = {}
    if not plain:
        return
    by_id = {message.pk: message for message in plain}
    rows = _rows(
        f"SELECT message_id, emoji, user_id FROM {_table(Reaction)} WHERE message_id IN ({_marks(by_id)}) ORDER BY id",  # noqa: S608
        list(by_id),
    )
    for message_id, emoji, user_id in rows:
        by_id[message_id].reaction_map.setdefault(emoji, []).append(user_id)
