from django.contrib import admin, messages
from django.forms.models import BaseInlineFormSet
from django.template.defaultfilters import filesizeformat
from django.utils.text import Truncator

from chat import services
from chat.models import FROZEN_FIELDS, Attachment, Conversation, Membership, Message
from chatterbox.errors import DomainError


class MembershipInline(admin.TabularInline):
    """The members, to read: every change goes through the services, so clients hear of it and
    the conversation shows it as a system line (docs/e2e.md: a member who appears without one is
    flagged). Removing is the Memberships list's action; adding is the inline below."""

    model = Membership
    extra = 0
    can_delete = False
    fields = readonly_fields = ["user", "role", "joined_at", "last_read_message_id", "muted"]

    def has_add_permission(self, request, obj=None):
        return False


class MemberAddFormSet(BaseInlineFormSet):
    """New members, added by `membership_add` (ConversationAdmin.save_formset), not saved as rows."""


class MemberAddInline(admin.TabularInline):
    model = Membership
    formset = MemberAddFormSet
    extra = 0
    can_delete = False
    raw_id_fields = ["user"]
    fields = ["user"]
    verbose_name = "member to add"
    verbose_name_plural = "add members (announced in the conversation)"

    def get_queryset(self, request):
        return super().get_queryset(request).none()

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "__str__", "kind", "encrypted", "created_by", "created_at", "archived_at"]
    list_filter = ["kind", "encrypted", "created_at"]
    search_fields = ["name", "topic", "memberships__user__username"]
    raw_id_fields = ["created_by"]
    readonly_fields = ["direct_key"]
    inlines = [MembershipInline, MemberAddInline]
    actions = ["archive_conversations", "unarchive_conversations"]

    def get_readonly_fields(self, request, obj=None):
        # Fixed at creation (docs/e2e.md): nobody, the admin included, may downgrade encryption.
        frozen = list(FROZEN_FIELDS) if obj is not None else []
        return [*frozen, *super().get_readonly_fields(request, obj)]

    def get_queryset(self, request):
        # Direct conversations are named by their members ("alice & bob"): fetch them all at once.
        return super().get_queryset(request).select_related("created_by").prefetch_related("memberships__user")

    def delete_model(self, request, obj):
        services.conversation_delete(conversation=obj, actor=request.user)

    def save_formset(self, request, form, formset, change):
        if not isinstance(formset, MemberAddFormSet):
            return super().save_formset(request, form, formset, change)
        # Nothing is saved as a row here; the admin's change log reads these (the audit log has it).
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for member_form in formset.forms:
            user = member_form.cleaned_data.get("user") if member_form.has_changed() else None
            if user is None:
                continue
            try:
                services.membership_add(actor=request.user, conversation_id=form.instance.pk, username=user.username)
            except DomainError as error:
                self.message_user(request, f"{user.username}: {error.detail}", messages.ERROR)
            else:
                self.message_user(request, f"Added {user.username}; the members see it at once.", messages.SUCCESS)

    def delete_queryset(self, request, queryset):
        for conversation in queryset:
            services.conversation_delete(conversation=conversation, actor=request.user)

    def _archive(self, request, queryset, archived: bool) -> None:
        for conversation in queryset:
            try:
                services.conversation_update(
                    actor=request.user, conversation_id=conversation.pk, changes={"archived": archived}
                )
            except DomainError as error:
                self.message_user(request, f"{conversation}: {error.detail}", messages.ERROR)
        self.message_user(request, "Done; members see the change at once.", messages.SUCCESS)

    @admin.action(description="Archive selected conversations (read-only for everyone)")
    def archive_conversations(self, request, queryset):
        self._archive(request, queryset, True)

    @admin.action(description="Unarchive selected conversations")
    def unarchive_conversations(self, request, queryset):
        self._archive(request, queryset, False)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["id", "conversation", "user", "role", "joined_at", "muted"]
    list_filter = ["role", "conversation__kind"]
    search_fields = ["user__username", "conversation__name"]
    raw_id_fields = ["conversation", "user"]
    list_select_related = ["conversation", "user"]
    actions = ["remove_members"]

    def get_actions(self, request):
        # Django's own bulk delete would remove rows behind the clients' backs.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_model(self, request, obj):
        services.membership_remove(actor=request.user, conversation_id=obj.conversation_id, username=obj.user.username)

    @admin.action(description="Remove selected members (their clients drop the conversation at once)")
    def remove_members(self, request, queryset):
        removed = 0
        for membership in queryset.select_related("user"):
            try:
                self.delete_model(request, membership)
            except DomainError as error:
                self.message_user(request, f"{membership.user.username}: {error.detail}", messages.ERROR)
            else:
                removed += 1
        self.message_user(request, f"Removed {removed} member(s).", messages.SUCCESS)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("conversation__memberships__user")


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """Moderators browse and delete messages; deleting goes through message_delete so clients see it."""

    list_display = ["id", "conversation", "sender", "text", "created_at", "edited_at", "deleted_at"]
    list_filter = ["conversation__kind", "conversation__encrypted", ("deleted_at", admin.EmptyFieldListFilter)]
    search_fields = ["body", "sender__username", "client_id", "conversation__name"]
    list_select_related = ["conversation", "sender"]

    def get_queryset(self, request):
        # The conversation column names direct conversations by their members.
        return super().get_queryset(request).prefetch_related("conversation__memberships__user")

    date_hierarchy = "created_at"
    fields = [
        "conversation",
        "sender",
        "client_id",
        "kind",
        "text",
        "reply_to",
        "created_at",
        "edited_at",
        "deleted_at",
    ]
    readonly_fields = fields
    actions = ["delete_messages"]

    @admin.display(description="Text")
    def text(self, message):
        # An encrypted message has no plaintext on the server; say so instead of showing base64.
        if message.deleted:
            return "(deleted)"
        if message.ciphertext:
            return "(end-to-end encrypted)"
        return Truncator(message.body).chars(80)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        # Django's own bulk delete would remove rows behind the clients' backs.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_model(self, request, obj):
        services.message_delete(actor=request.user, message_id=obj.pk, reason="Deleted in the admin.")

    def delete_queryset(self, request, queryset):
        for message_id in queryset.values_list("id", flat=True):
            services.message_delete(actor=request.user, message_id=message_id)

    @admin.action(description="Delete selected messages (clients remove them at once)", permissions=["delete"])
    def delete_messages(self, request, queryset):
        self.delete_queryset(request, queryset)
        self.message_user(request, f"Deleted {queryset.count()} message(s).", messages.SUCCESS)


@admin.register(Attachment)
class AttachmentAdmin(admin.ModelAdmin):
    """Moderators see what is stored and by whom; in encrypted conversations only the size is known."""

    list_display = ["id", "__str__", "kind", "content_type", "size_display", "uploader", "conversation", "message"]
    list_filter = ["kind", "conversation__kind", "conversation__encrypted", ("message", admin.EmptyFieldListFilter)]
    search_fields = ["name", "uploader__username", "conversation__name"]
    list_select_related = ["uploader", "conversation"]
    date_hierarchy = "created_at"
    fields = [
        "conversation",
        "uploader",
        "message",
        "kind",
        "name",
        "content_type",
        "size",
        "width",
        "height",
        "duration",
        "file",
        "thumbnail",
        "created_at",
    ]
    readonly_fields = fields

    @admin.display(description="Size", ordering="size")
    def size_display(self, attachment):
        return filesizeformat(attachment.size)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        # A sent file goes with its message, so that clients remove both; an unsent one simply goes.
        if obj.message_id:
            services.message_delete(actor=request.user, message_id=obj.message_id)
        else:
            obj.delete()

    def delete_queryset(self, request, queryset):
        for attachment in queryset:
            self.delete_model(request, attachment)
