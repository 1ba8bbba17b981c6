"""The audit log's one writer: services call audit_record inside their transaction."""

from moderation.models import AuditEntry


def audit_record(
    *, actor, action: str, target_user=None, conversation=None, message_id=None, reason: str = "", **detail
) -> AuditEntry:
    """Record one moderation action (in the caller's transaction, so it exists only if the action does)."""
    return AuditEntry.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        action=action,
        target_user=target_user,
        conversation=conversation,
        conversation_label=str(conversation)[:100] if conversation is not None else "",
        message_id=message_id,
        reason=reason or "",
        detail=detail,
    )
