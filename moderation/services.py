"""Writes for moderation: blocks, reports and their handling. Every door calls these."""

import base64
import binascii
import json

import nacl.exceptions
import nacl.secret
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import services as account_services
from accounts.models import User
from chat import events
from chat import services as chat_services
from chat.models import Message
from chatterbox.errors import Forbidden, Invalid, NotFound
from moderation.audit import audit_record
from moderation.models import Block, Report
from moderation.restrictions import block_between, direct_block_check  # noqa: F401 - re-exported

NOTE_MAX = 1000
EVIDENCE_TEXT_MAX = 20000
KEY_BYTES = nacl.secret.SecretBox.KEY_SIZE


def _user_named(username: str) -> User:
    user = User.objects.filter(username=username, is_active=True).first()
    if user is None:
        raise NotFound(f"No such user: {username}.", usernames=[username])
    return user


def block_create(*, blocker: User, username: str) -> tuple[Block, bool]:
    """Block a user; return the block and whether it is new."""
    blocked = _user_named(username)
    if blocked.pk == blocker.pk:
        raise Invalid("You cannot block yourself.", field="username")
    try:
        with transaction.atomic():
            return Block.objects.get_or_create(blocker=blocker, blocked=blocked)
    except IntegrityError:  # the same block raced in from another tab
        return Block.objects.get(blocker=blocker, blocked=blocked), False


def block_delete(*, blocker: User, username: str) -> None:
    """Lift a block; NotFound if there was none."""
    deleted, _ = Block.objects.filter(blocker=blocker, blocked__username=username).delete()
    if not deleted:
        raise NotFound(f"You have not blocked {username}.")


def blocks_of(*, user: User) -> list[Block]:
    return list(Block.objects.filter(blocker=user).select_related("blocked").order_by("-created_at", "-id"))


def profile_context(*, user: User) -> dict:
    """Return what the profile page shows of moderation: whom the user blocked."""
    reports = Report.objects.filter(reporter=user).select_related("reported_user").order_by("-created_at", "-id")
    return {"blocks": blocks_of(user=user), "reports": list(reports[:20])}


# Reports


def report_create(
    *,
    reporter: User,
    reason: str,
    message_id: int | None = None,
    username: str | None = None,
    note: str = "",
    evidence: dict | None = None,
) -> tuple[Report, bool]:
    """File a report on a message the reporter can read, or on a user; return it and whether it is new.

    For an encrypted message the reporter's evidence (the text they read and the message key)
    is checked against the ciphertext the server stored from the sender.
    """
    if reason not in Report.Reason.values:
        raise Invalid(f"reason must be one of: {', '.join(Report.Reason.values)}.", field="reason")
    if len(note) > NOTE_MAX:
        raise Invalid(f"A note has at most {NOTE_MAX} characters.", field="note")
    if message_id is None and not username:
        raise Invalid("Report a message (message: ID) or a user (user: USERNAME).")
    fields = {"reason": reason, "note": note.strip()}
    if message_id is not None:
        fields.update(_message_report_fields(reporter, message_id, username, evidence))
    else:
        if evidence is not None:
            raise Invalid("evidence belongs to a report of an encrypted message.", field="evidence")
        fields["reported_user"] = _user_named(username)
        if fields["reported_user"].pk == reporter.pk:
            raise Invalid("You cannot report yourself.", field="user")
    existing = Report.objects.filter(
        reporter=reporter,
        status=Report.Status.OPEN,
        message=fields.get("message"),
        reported_user=fields["reported_user"],
    ).first()
    if existing:
        return existing, False
    return Report.objects.create(reporter=reporter, **fields), True


def _message_report_fields(reporter: User, message_id: int, username: str | None, evidence) -> dict:
    message = Message.objects.visible_to(reporter).filter(pk=message_id).first()
    if message is None:
        raise NotFound("No such message.")
    if message.sender is None or message.kind != Message.Kind.TEXT:
        raise Invalid("Only messages people wrote can be reported.", field="message")
    if message.sender_id == reporter.pk:
        raise Invalid("You cannot report your own message.", field="message")
    if message.deleted:
        raise Invalid("This message was already deleted.", field="message")
    if username and username != message.sender.username:
        raise Invalid("user must be the message's sender, or left out.", field="user")
    fields = {"message": message, "conversation": message.conversation, "reported_user": message.sender}
    if not message.conversation.encrypted:
        if evidence is not None:
            raise Invalid("evidence is only for encrypted messages; the server has this one.", field="evidence")
        return {**fields, "message_text": message.body, "verification": Report.Verification.PLAINTEXT}
    if evidence is None:
        return {**fields, "verification_detail": "The reporter sent no evidence."}
    text, key = _evidence_check(evidence)
    problem = evidence_problem(message, text=text, key=key)
    verification = Report.Verification.UNVERIFIED if problem else Report.Verification.VERIFIED
    return {**fields, "message_text": text, "verification": verification, "verification_detail": problem}


def _evidence_check(evidence) -> tuple[str, bytes]:
    if not isinstance(evidence, dict) or not isinstance(evidence.get("text"), str):
        raise Invalid("evidence must be {text, key}: the text you read and the message key.", field="evidence")
    if len(evidence["text"]) > EVIDENCE_TEXT_MAX:
        raise Invalid(f"evidence.text has at most {EVIDENCE_TEXT_MAX} characters.", field="evidence")
    try:
        key = base64.b64decode(str(evidence.get("key", "")).encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        key = b""
    if len(key) != KEY_BYTES:
        raise Invalid(f"evidence.key must be the {KEY_BYTES}-byte message key in standard base64.", field="evidence")
    return evidence["text"], key


def evidence_problem(message: Message, *, text: str, key: bytes) -> str:
    """Return why the claimed text is not what the sender's stored ciphertext says, or "" if it is."""
    try:
        ciphertext = base64.b64decode(message.ciphertext)
        nonce = base64.b64decode(message.nonce)
        content = json.loads(nacl.secret.SecretBox(key).decrypt(ciphertext, nonce))
    except (ValueError, TypeError, binascii.Error, nacl.exceptions.CryptoError):
        return "The key does not open the ciphertext the server stored."
    if not isinstance(content, dict):
        return "The decrypted content is not a message."
    # Inside the encryption: a message copied from another conversation does not pass.
    if str(content.get("conversation")) != str(message.conversation_id):
        return "The decrypted content belongs to another conversation."
    if content.get("client_id") != message.client_id:
        return "The decrypted content belongs to another message."
    if content.get("text") != text:
        return "The reported text differs from the decrypted message."
    return ""


@transaction.atomic
def report_resolve(*, moderator: User, report_id: int, action: str, reason: str = "") -> Report:
    """Act on a report (delete_message, ban_user) or dismiss it; the reporter hears of it."""
    report = Report.objects.select_for_update().filter(pk=report_id).first()
    if report is None:
        raise NotFound("No such report.")
    if not moderator.is_staff:
        raise Forbidden("Only moderators handle reports.")
    if report.status != Report.Status.OPEN:
        raise Invalid(f"This report was already {report.get_status_display().lower()}.")
    if action == "delete_message":
        if report.message_id is None:
            raise Invalid("This report names no message.")
        chat_services.message_delete(actor=moderator, message_id=report.message_id, reason=reason or report.reason)
        resolution, status = "The message was deleted.", Report.Status.ACTED
    elif action == "ban_user":
        if report.reported_user is None:
            raise Invalid("This report names no user.")
        account_services.user_ban(user=report.reported_user, actor=moderator, reason=reason or report.reason)
        resolution, status = "The account was banned.", Report.Status.ACTED
    elif action == "dismiss":
        resolution, status = "No action was taken.", Report.Status.DISMISSED
    else:
        raise Invalid("action must be one of: delete_message, ban_user, dismiss.", field="action")
    report.status, report.resolution = status, resolution
    report.handled_by, report.handled_at = moderator, timezone.now()
    report.save(update_fields=["status", "resolution", "handled_by", "handled_at"])
    audit_record(
        actor=moderator,
        action=f"report.{status}",
        target_user=report.reported_user,
        conversation=report.conversation,
        message_id=report.message_id,
        reason=reason,
        report=report.pk,
    )
    event = {"type": "chat.report.handled", "report": report_json(report)}
    events.broadcast_on_commit(events.user_group(report.reporter_id), event)
    return report


def report_json(report: Report) -> dict:
    return {
        "id": report.pk,
        "status": report.status,
        "reason": report.reason,
        "message": report.message_id,
        "resolution": report.resolution,
    }


def message_context(report: Report, *, around: int = 3) -> list[tuple[Message, str]]:
    """Return the messages around a reported one with what a moderator may read of each.

    Encrypted messages show text only where a report verified it against the stored ciphertext.
    """
    if report.message_id is None:
        return []
    conversation = report.message.conversation
    rows = Message.objects.filter(conversation=conversation).select_related("sender")
    before = list(rows.filter(id__lt=report.message_id).order_by("-id")[:around])[::-1]
    after = list(rows.filter(id__gt=report.message_id).order_by("id")[:around])
    window = [*before, report.message, *after]
    verified = dict(
        Report.objects.filter(message__in=window, verification=Report.Verification.VERIFIED).values_list(
            "message_id", "message_text"
        )
    )
    shown = []
    for message in window:
        if message.deleted:
            text = "(deleted)"
        elif not conversation.encrypted or message.kind == Message.Kind.SYSTEM:
            # System lines are plaintext even in encrypted conversations: the server wrote them.
            text = message.body
        else:
            text = verified.get(message.pk, "(end-to-end encrypted)")
        shown.append((message, text))
    return shown
