"""Blocks between users, reports to the moderators, and the audit log of moderation actions."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Block(models.Model):
    """`blocker` no longer hears from `blocked`: no direct messages, hidden in shared rooms."""

    blocker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blocks_made")
    blocked = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blocks_received")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["blocker", "blocked"], name="block_unique")]
        indexes = [models.Index(fields=["blocked", "blocker"], name="block_blocked_idx")]

    def __str__(self) -> str:
        return f"{self.blocker_id} blocks {self.blocked_id}"


class Report(models.Model):
    """A user's report of a message or of a user, for the moderators to triage."""

    class Reason(models.TextChoices):
        SPAM = "spam", "Spam or scam"
        HARASSMENT = "harassment", "Harassment or bullying"
        HATE = "hate", "Hate speech"
        VIOLENCE = "violence", "Violence or threats"
        SEXUAL = "sexual", "Sexual content"
        OTHER = "other", "Something else"

    class Status(models.TextChoices):
        OPEN = "open"
        ACTED = "acted", "Acted on"
        DISMISSED = "dismissed"

    class Verification(models.TextChoices):
        # How far the server can vouch for the text the moderator sees.
        PLAINTEXT = "plaintext", "Plaintext (the server's own copy)"
        VERIFIED = "verified", "Verified from the stored ciphertext"
        UNVERIFIED = "unverified", "Unverified: does not match the stored ciphertext"
        NONE = "none", "No message text"

    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reports_made")
    reported_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="reports_received"
    )
    message = models.ForeignKey(
        "chat.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports"
    )
    conversation = models.ForeignKey(
        "chat.Conversation", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports"
    )
    reason = models.CharField(max_length=16, choices=Reason.choices)
    note = models.TextField(blank=True)
    # What the moderator reads: a plaintext message's body, or the reporter's claim for an encrypted one.
    message_text = models.TextField(blank=True)
    verification = models.CharField(max_length=12, choices=Verification.choices, default=Verification.NONE)
    verification_detail = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    handled_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "created_at"], name="report_queue_idx")]

    def __str__(self) -> str:
        return f"report {self.pk} ({self.get_reason_display()})"


class AuditEntry(models.Model):
    """One moderation action: who did what to whom, where, when and why. Written by services only."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_actions"
    )
    action = models.CharField(max_length=40)
    target_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_targeted"
    )
    conversation = models.ForeignKey(
        "chat.Conversation", null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries"
    )
    # Plain ids and a label, so the entry still says what it was about after a deletion.
    conversation_label = models.CharField(max_length=100, blank=True)
    message_id = models.BigIntegerField(null=True, blank=True)
    reason = models.TextField(blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name_plural = "audit log"
        indexes = [
            models.Index(fields=["actor", "created_at"], name="audit_actor_idx"),
            models.Index(fields=["target_user", "created_at"], name="audit_target_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_id} at {self.created_at:%Y-%m-%d %H:%M}"
