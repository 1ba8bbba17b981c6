"""The moderators' side: the report queue (with the reported message in context) and its actions."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from chat.models import Message
from chatterbox.errors import DomainError
from moderation import services
from moderation.models import AuditEntry, Block, Report

ACTIVITY_ROWS = 10

VERIFICATION_BADGES = {
    Report.Verification.PLAINTEXT: "plaintext message, the server's own copy",
    Report.Verification.VERIFIED: "verified from the stored ciphertext",
    Report.Verification.UNVERIFIED: "UNVERIFIED: does not match the stored ciphertext",
    Report.Verification.NONE: "no text",
}


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ["id", "created_at", "reason", "reported_user", "reporter", "text_check", "status"]
    list_filter = ["status", "reason", "verification", "created_at"]
    search_fields = ["reporter__username", "reported_user__username", "note", "message_text"]
    list_select_related = ["reporter", "reported_user", "conversation"]
    ordering = ["-created_at", "-id"]
    fields = [
        "status",
        "reason",
        "reporter",
        "reported_user",
        "conversation",
        "message",
        "reported_text",
        "verification_detail",
        "note",
        "context",
        "created_at",
        "handled_by",
        "handled_at",
        "resolution",
    ]
    readonly_fields = fields
    actions = ["delete_reported_messages", "ban_reported_users", "dismiss_reports"]
    change_form_template = "admin/moderation/report/change_form.html"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Reports are never edited; they are resolved through report_resolve.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        return super().get_actions(request) if self._may_resolve(request) else {}

    def _may_resolve(self, request) -> bool:
        return request.user.is_staff and request.user.has_perm("moderation.change_report")

    @admin.display(description="Text", ordering="verification")
    def text_check(self, report):
        return report.verification

    @admin.display(description="Reported text")
    def reported_text(self, report):
        if report.verification == Report.Verification.NONE:
            return "(no text: " + (report.verification_detail or "a report of a user") + ")"
        badge = VERIFICATION_BADGES[report.verification]
        css = "verified" if report.verification != Report.Verification.UNVERIFIED else "unverified"
        return format_html(
            '<p class="report-text">{}</p><p class="report-{}"><strong>{}</strong></p>', report.message_text, css, badge
        )

    @admin.display(description="Conversation around it")
    def context(self, report):
        rows = services.message_context(report)
        if not rows:
            return "-"
        return format_html(
            '<ol class="report-context">{}</ol>',
            format_html_join(
                "",
                "<li>{}</li>",
                ((self._context_line(report, message, text),) for message, text in rows),
            ),
        )

    def _context_line(self, report, message, text):
        line = format_html(
            "<strong>{}</strong> <time>{}</time>: {}",
            message.sender.username if message.sender else "system",
            message.created_at.strftime("%Y-%m-%d %H:%M"),
            text,
        )
        # The reported message stands out (a <mark>, as no inline style passes the CSP).
        return format_html("<mark>{}</mark>", line) if message.pk == report.message_id else line

    def get_urls(self):
        resolve = self.admin_site.admin_view(require_POST(self.resolve_view))
        return [path("<int:report_id>/resolve/", resolve, name="moderation_report_resolve"), *super().get_urls()]

    def resolve_view(self, request, report_id: int):
        """Act on one report from its page: delete the message, ban the user or dismiss."""
        if not self._may_resolve(request):
            raise PermissionDenied
        self._resolve(request, [report_id], request.POST.get("action", ""), request.POST.get("reason", ""))
        return redirect(reverse("admin:moderation_report_change", args=[report_id]))

    def _resolve(self, request, report_ids, action: str, reason: str = "") -> None:
        done = 0
        for report_id in report_ids:
            try:
                services.report_resolve(moderator=request.user, report_id=report_id, action=action, reason=reason)
            except DomainError as error:
                self.message_user(request, f"Report {report_id}: {error.detail}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, f"Handled {done} report(s); the reporters were told.", messages.SUCCESS)

    @admin.action(description="Delete the reported messages (and close the reports)")
    def delete_reported_messages(self, request, queryset):
        self._resolve(request, list(queryset.values_list("id", flat=True)), "delete_message")

    @admin.action(description="Ban the reported users (and close the reports)")
    def ban_reported_users(self, request, queryset):
        self._resolve(request, list(queryset.values_list("id", flat=True)), "ban_user")

    @admin.action(description="Dismiss the selected reports")
    def dismiss_reports(self, request, queryset):
        self._resolve(request, list(queryset.values_list("id", flat=True)), "dismiss")


@admin.register(Block)
class BlockAdmin(admin.ModelAdmin):
    list_display = ["id", "blocker", "blocked", "created_at"]
    search_fields = ["blocker__username", "blocked__username"]
    list_select_related = ["blocker", "blocked"]
    readonly_fields = ["blocker", "blocked", "created_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """The audit log, read-only: services write it, nobody edits or deletes it here."""

    list_display = ["created_at", "actor", "action", "target_user", "conversation_label", "message_id", "reason"]
    list_filter = [
        "action",
        ("actor", admin.RelatedOnlyFieldListFilter),
        ("target_user", admin.RelatedOnlyFieldListFilter),
        "created_at",
    ]
    search_fields = ["actor__username", "target_user__username", "conversation_label", "reason", "action"]
    list_select_related = ["actor", "target_user"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def user_activity_html(user):
    """Return what a moderator wants to see of a user: recent messages, conversations, reports and actions."""
    messages_sent = Message.objects.filter(sender=user).select_related("conversation").order_by("-id")[:ACTIVITY_ROWS]
    lines = format_html_join(
        "",
        "<li>{} in {}: {}</li>",
        (
            (
                message.created_at.strftime("%Y-%m-%d %H:%M"),
                message.conversation,
                "(deleted)"
                if message.deleted
                else "(end-to-end encrypted)"
                if message.ciphertext
                else message.body[:120],
            )
            for message in messages_sent
        ),
    )
    memberships = format_html_join(
        ", ", "{} ({})", ((m.conversation, m.role) for m in user.memberships.select_related("conversation")[:50])
    )
    reports = Report.objects.filter(reported_user=user).order_by("-created_at")[:ACTIVITY_ROWS]
    report_lines = format_html_join(
        "",
        '<li><a href="{}">{}</a>: {} ({})</li>',
        (
            (reverse("admin:moderation_report_change", args=[r.pk]), r, r.get_reason_display(), r.get_status_display())
            for r in reports
        ),
    )
    audit_url = reverse("admin:moderation_auditentry_changelist") + f"?target_user__id__exact={user.pk}"
    return format_html(
        "<h4>Latest messages</h4><ul>{}</ul><h4>Conversations</h4><p>{}</p>"
        '<h4>Reports about this user</h4><ul>{}</ul><p><a href="{}">Moderation actions on this user</a></p>',
        lines or mark_safe("<li>none</li>"),
        memberships or "none",
        report_lines or mark_safe("<li>none</li>"),
        audit_url,
    )
