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
