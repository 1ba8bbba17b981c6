"""Conversations, who belongs to them, the messages sent in them and their attachments."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Count, Exists, F, FilteredRelation, OuterRef, Prefetch, Q, Subquery
from django.db.models.functions import Coalesce, Lower
from django.utils import timezone

from chatterbox.errors import Forbidden

# Fixed when a conversation is created: a server that could flip `encrypted` could turn a
# private conversation into plaintext behind its members' backs (docs/e2e.md).
FROZEN_FIELDS = ("kind", "encrypted")
FROZEN_DETAIL = "A conversation's kind and encryption never change after it is created."


class ConversationQuerySet(models.QuerySet):
    def update(self, **fields) -> int:
        if frozen := sorted(set(fields) & set(FROZEN_FIELDS)):
            raise Forbidden(FROZEN_DETAIL, fields=frozen)
        return super().update(**fields)

    def bulk_update(self, objs, fields, batch_size=None) -> int:
        if frozen := sorted(set(fields) & set(FROZEN_FIELDS)):
            raise Forbidden(FROZEN_DETAIL, fields=frozen)
        return super().bulk_update(objs, fields, batch_size=batch_size)

    def for_user(self, user) -> "ConversationQuerySet":
        """Return the user's conversations with their role, unread count, last message and members."""
        unread = (
            Message.objects.filter(conversation=OuterRef("pk"), id__gt=OuterRef("last_read"), deleted_at__isnull=True)
            .exclude(sender=user)
            .exclude(kind__in=[Message.Kind.SYSTEM, Message.Kind.REACTION])
            .order_by()
            .values("conversation")
            .annotate(count=Count("id"))
            .values("count")
        )
        mentions = (
            MessageMention.objects.filter(
                user=user,
                message__conversation=OuterRef("pk"),
                message__id__gt=OuterRef("last_read"),
                message__deleted_at__isnull=True,
            )
            .order_by()
            .values("user")
            .annotate(count=Count("id"))
            .values("count")
        )
        last = Message.objects.filter(conversation=OuterRef("pk")).order_by("-id").values("id")[:1]
        return (
            self.filter(memberships__user=user)
            # These reuse the join of the filter above: one row per conversation, my membership's.
            .annotate(
                role=F("memberships__role"),
                last_read=F("memberships__last_read_message_id"),
                muted=F("memberships__muted"),
            )
            .annotate(
                unread=Coalesce(Subquery(unread), 0),
                mentions=Coalesce(Subquery(mentions), 0),
                last_message_id=Subquery(last),
            )
            .prefetch_related(Prefetch("memberships", queryset=Membership.objects.with_users(), to_attr="members"))
            .order_by(F("last_message_id").desc(nulls_last=True), "-created_at", "-id")
        )

    def channels_for(self, user) -> "ConversationQuerySet":
        """Return public channels with their member count and whether the user has joined.

        An archived channel is listed to its members only: nobody else can join it.
        """
        joined = Membership.objects.filter(conversation=OuterRef("pk"), user=user)
        return (
            self.filter(kind=Conversation.Kind.CHANNEL)
            .annotate(member_count=Count("memberships"), joined=Exists(joined))
            .filter(Q(archived_at__isnull=True) | Q(joined=True))
            .order_by("name", "id")
        )


class Conversation(models.Model):
    """A direct message, a private group or a public channel."""

    class Kind(models.TextChoices):
        DIRECT = "direct"
        GROUP = "group"
        CHANNEL = "channel"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    name = models.CharField(max_length=80, blank=True)
    topic = models.CharField(max_length=250, blank=True)
    encrypted = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # "lower_id:higher_id" for a direct conversation, so asking twice finds the same one.
    direct_key = models.CharField(max_length=41, null=True, blank=True, unique=True, editable=False)
    # Archived: still readable, no longer written to (by anyone).
    archived_at = models.DateTimeField(null=True, blank=True)

    objects = ConversationQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["kind", "name"])]
        constraints = [
            # Public channels are found by name: two that differ only in case would be confused.
            models.UniqueConstraint(Lower("name"), condition=Q(kind="channel"), name="channel_name_unique_ci"),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.DIRECT and self.pk:
            return " & ".join(self.participant_usernames()) or f"Direct {self.pk}"
        return self.name or f"{self.get_kind_display()} {self.pk}"

    def save(self, *args, **kwargs) -> None:
        """Refuse to store a changed kind or encryption flag (migration 0004 refuses it in the database too)."""
        update_fields = kwargs.get("update_fields")
        checked = FROZEN_FIELDS if update_fields is None else [f for f in FROZEN_FIELDS if f in update_fields]
        if self.pk is not None and checked:
            stored = type(self).objects.filter(pk=self.pk).values(*checked).first()
            if stored is not None and any(stored[field] != getattr(self, field) for field in checked):
                raise Forbidden(FROZEN_DETAIL, fields=[f for f in checked if stored[f] != getattr(self, f)])
        super().save(*args, **kwargs)

    @property
    def archived(self) -> bool:
        return self.archived_at is not None

    def participant_usernames(self) -> list[str]:
        """Return the members' usernames, sorted; free when memberships__user was prefetched."""
        if "memberships" in getattr(self, "_prefetched_objects_cache", {}):
            return sorted(membership.user.username for membership in self.memberships.all())
        return list(self.memberships.order_by("user__username").values_list("user__username", flat=True))


class MembershipQuerySet(models.QuerySet):
    def with_users(self) -> "MembershipQuerySet":
        # The key comes along: clients encrypt for these members (conversation JSON carries it).
        return self.select_related("user", "user__encryption_key").order_by("joined_at", "id")


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        ADMIN = "admin"
        MEMBER = "member"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(default=timezone.now)
    # Messages up to this id count as read; a new member starts at the conversation's newest.
    last_read_message_id = models.BigIntegerField(default=0)
    muted = models.BooleanField(default=False)
    # Set by the owner or an admin: the member may not write until then. (`muted` above is the
    # member's own choice to silence notifications.)
    muted_until = models.DateTimeField(null=True, blank=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["conversation", "user"], name="membership_unique")]
        # The unique constraint serves lookups by conversation; this one serves "my conversations".
        indexes = [models.Index(fields=["user", "conversation"], name="membership_user_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.conversation_id} ({self.role})"

    @property
    def is_moderator(self) -> bool:
        return self.role in {self.Role.OWNER, self.Role.ADMIN}


class MessageQuerySet(models.QuerySet):
    def visible_to(self, user) -> "MessageQuerySet":
        """Return messages of the user's conversations that the user can read, each with its own key.

        In an encrypted conversation a member can read only the messages that carry a key for
        them, so history from before they joined stays out of their view. System messages
        (who joined, who left) are plaintext and visible to every member.
        """
        return (
            self.annotate(own_key=FilteredRelation("keys", condition=Q(keys__user=user)))
            .filter(Exists(Membership.objects.filter(conversation=OuterRef("conversation"), user=user)))
            .filter(Q(conversation__encrypted=False) | Q(own_key__isnull=False) | Q(kind=Message.Kind.SYSTEM))
            .annotate(recipient_key=F("own_key__key"))
            .select_related("sender", "conversation", "attachment")
        )

    def after(self, message_id: int) -> "MessageQuerySet":
        """Return messages newer than message_id, oldest first."""
        return self.filter(id__gt=message_id).order_by("id")

    def before(self, message_id: int) -> "MessageQuerySet":
        """Return messages older than message_id, newest first (reverse a page to show it)."""
        return self.filter(id__lt=message_id).order_by("-id")


class Message(models.Model):
    """One message: plaintext `body`, or `ciphertext` + `nonce` with one wrapped key per member."""

    class Kind(models.TextChoices):
        TEXT = "text"
        SYSTEM = "system"
        # Encrypted conversations only: the emoji and its target are inside the ciphertext.
        REACTION = "reaction"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="messages_sent"
    )
    client_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.TEXT)
    body = models.TextField(blank=True)
    # Standard base64, stored as the client sent it (validated); the server cannot read it.
    ciphertext = models.TextField(blank=True)
    nonce = models.CharField(max_length=32, blank=True)
    reply_to = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # A system message's {event, actor, user, ...} (chat/services/system.py); null for the rest.
    system = models.JSONField(null=True, blank=True)

    objects = MessageQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sender", "client_id"], name="message_client_id_unique")]
        # History pages and unread counts walk a conversation by id.
        indexes = [models.Index(fields=["conversation", "id"], name="message_history_idx")]

    def __str__(self) -> str:
        return f"message {self.pk} in {self.conversation_id}"

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


class MessageKey(models.Model):
    """The message key wrapped for one recipient of an encrypted message."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="keys")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "user"], name="message_key_unique")]

    def __str__(self) -> str:
        return f"key of message {self.message_id} for {self.user_id}"


class LinkPreview(models.Model):
    """A fetched link preview (or a failed fetch), cached by URL; see chat/previews.py."""

    url_hash = models.CharField(max_length=64, unique=True)  # SHA-256 of the URL: URLs can be long
    url = models.TextField()
    ok = models.BooleanField(default=False)
    title = models.CharField(max_length=200, blank=True)
    description = models.CharField(max_length=500, blank=True)
    site_name = models.CharField(max_length=100, blank=True)
    fetched_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.url

    def as_json(self) -> dict:
        return {"url": self.url, "title": self.title, "description": self.description, "site_name": self.site_name}


class Reaction(models.Model):
    """One user's emoji on a message of a plaintext conversation (chat/services/reactions.py)."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reactions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    emoji = models.CharField(max_length=32)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "user", "emoji"], name="reaction_unique")]

    def __str__(self) -> str:
        return f"{self.emoji} by {self.user_id} on {self.message_id}"


class MessageMention(models.Model):
    """A member named by a plaintext message (@username, or everyone by @channel/@here)."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="mentions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "user"], name="mention_unique")]
        indexes = [models.Index(fields=["user", "message"], name="mention_user_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.message_id}"


def attachment_path(attachment, filename: str) -> str:
    """Store under a random name: the user's file name never reaches the storage backend."""
    return f"attachments/{attachment.conversation_id}/{uuid.uuid4().hex}"


class AttachmentQuerySet(models.QuerySet):
    def readable_by(self, user) -> "AttachmentQuerySet":
        """Return attachments the user may fetch: in a conversation they belong to now, and sent
        in a message that still stands, or still unsent and their own."""
        member = Membership.objects.filter(conversation=OuterRef("conversation"), user=user)
        return self.filter(Exists(member)).filter(
            Q(message__isnull=False, message__deleted_at__isnull=True) | Q(message__isnull=True, uploader=user)
        )

    def orphaned(self, *, older_than) -> "AttachmentQuerySet":
        """Return uploads never used in a message and created before older_than."""
        return self.filter(message__isnull=True, created_at__lt=older_than)


class Attachment(models.Model):
    """A file uploaded for one conversation; once sent, it belongs to exactly one message.

    In an encrypted conversation `file` is an opaque blob and name and type are blank: the real
    ones travel inside the message's encrypted content.
    """

    class Kind(models.TextChoices):
        FILE = "file"
        PICTURE = "picture"
        VOICE = "voice"
        VIDEO = "video"
        ENCRYPTED = "encrypted"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="attachments")
    # Kept when the account goes: others may still see the message it was sent in.
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="attachments"
    )
    message = models.OneToOneField(Message, null=True, blank=True, on_delete=models.CASCADE, related_name="attachment")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.FILE)
    file = models.FileField(upload_to=attachment_path, max_length=200)
    thumbnail = models.FileField(upload_to=attachment_path, max_length=200, blank=True)
    name = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=100, default="application/octet-stream")
    size = models.BigIntegerField()
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = AttachmentQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["uploader", "size"], name="attachment_quota_idx"),
            models.Index(fields=["created_at"], name="attachment_orphan_idx", condition=Q(message__isnull=True)),
        ]

    def __str__(self) -> str:
        return self.name or f"attachment {self.pk}"
