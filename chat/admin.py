from django.contrib import admin, messages
from django.utils.text import Truncator

from chat import services
from chat.models import FROZEN_FIELDS, Conversation, Membership, Message


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]
    fields = ["user", "role", "joined_at", "last_read_message_id", "muted"]
    readonly_fields = ["joined_at", "last_read_message_id"]


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "__str__", "kind", "encrypted", "created_by", "created_at"]
    list_filter = ["kind", "encrypted", "created_at"]
    search_fields = ["name", "topic", "memberships__user__username"]
    raw_id_fields = ["created_by"]
    readonly_fields = ["direct_key"]
    inlines = [MembershipInline]

    def get_readonly_fields(self, request, obj=None):
        # Fixed at creation (docs/e2e.md): nobody, the admin included, may downgrade encryption.
        frozen = list(FROZEN_FIELDS) if obj is not None else []
        return [*frozen, *super().get_readonly_fields(request, obj)]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by")

    def delete_model(self, request, obj):
        services.conversation_delete(conversation=obj)

    def delete_queryset(self, request, queryset):
        for conversation in queryset:
            services.conversation_delete(conversation=conversation)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["id", "conversation", "user", "role", "joined_at", "muted"]
    list_filter = ["role", "conversation__kind"]
    search_fields = ["user__username", "conversation__name"]
    raw_id_fields = ["conversation", "user"]
    list_select_related = ["conversation", "user"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """Moderators browse and delete messages; deleting goes through message_delete so clients see it."""

    list_display = ["id", "conversation", "sender", "text", "created_at", "edited_at", "deleted_at"]
    list_filter = ["conversation__kind", "conversation__encrypted", ("deleted_at", admin.EmptyFieldListFilter)]
    search_fields = ["body", "sender__username", "client_id", "conversation__name"]
    list_select_related = ["conversation", "sender"]
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
        services.message_delete(actor=request.user, message_id=obj.pk)

    def delete_queryset(self, request, queryset):
        for message_id in queryset.values_list("id", flat=True):
            services.message_delete(actor=request.user, message_id=message_id)

    @admin.action(description="Delete selected messages (clients remove them at once)", permissions=["delete"])
    def delete_messages(self, request, queryset):
        self.delete_queryset(request, queryset)
        self.message_user(request, f"Deleted {queryset.count()} message(s).", messages.SUCCESS)
