from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.template.response import TemplateResponse
from django.utils.html import format_html

from accounts import services, sessions
from accounts.models import ApiToken, User
from moderation.admin import user_activity_html


class BanForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        max_length=User._meta.get_field("ban_reason").max_length,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Kept on each account, for the moderators who come after you.",
    )


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    # Narrow enough for a 1280 px window: status and bio are on the change page and searchable.
    list_display = ["picture", "username", "display_name", "email", "is_active", "is_staff", "date_joined"]
    list_display_links = ["picture", "username"]
    list_filter = ["is_active", "is_staff", "is_superuser", "date_joined"]
    search_fields = ["username", "display_name", "email", "status", "bio"]
    readonly_fields = [
        "picture",
        "avatar_version",
        "last_login",
        "date_joined",
        "last_seen_at",
        "ban_reason",
        "banned_at",
        "recent_activity",
    ]
    fieldsets = [
        *DjangoUserAdmin.fieldsets,
        (
            "Profile",
            {"fields": ["picture", "display_name", "status", "bio", "avatar", "avatar_version", "last_seen_at"]},
        ),
        ("Ban", {"fields": ["banned_at", "ban_reason"]}),
        ("Moderation", {"fields": ["recent_activity"]}),
    ]
    actions = ["ban_users", "unban_users"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # Unticking "Active" on the change page is a ban too: the same service cuts the sockets.
        if change and "is_active" in form.changed_data:
            if obj.is_active:
                services.user_unban(user=obj, actor=request.user)
            else:
                services.user_ban(user=obj, actor=request.user)

    def user_change_password(self, request, id, form_url=""):
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            # A password set here signs the user out everywhere, open sockets included; an
            # administrator changing their own keeps this browser.
            user = self.get_object(request, unquote(id))
            if user == request.user:
                sessions.end_other_sessions(sender=User, request=request, user=user)
            else:
                sessions.sessions_end(user=user)
        return response

    @admin.display(description="Picture")
    def picture(self, user):
        return format_html('<img src="{}" alt="" width="32" height="32">', user.avatar_url)

    @admin.display(description="Recent activity")
    def recent_activity(self, user):
        return user_activity_html(user) if user.pk else "-"

    @admin.action(description="Ban selected users (deactivate and disconnect)…")
    def ban_users(self, request, queryset):
        """Ask for a reason first (a page of its own, like Django's delete confirmation), then ban."""
        targets = queryset.filter(is_active=True).exclude(pk=request.user.pk)
        form = BanForm(request.POST if "confirm_ban" in request.POST else None)
        if form.is_valid():
            banned = 0
            for user in targets:
                services.user_ban(user=user, actor=request.user, reason=form.cleaned_data["reason"])
                banned += 1
            self.message_user(request, f"Banned {banned} user(s).", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Ban users",
            "opts": self.model._meta,
            "form": form,
            "targets": targets,
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/accounts/user/ban_confirmation.html", context)

    @admin.action(description="Lift the ban on selected users")
    def unban_users(self, request, queryset):
        for user in queryset.filter(is_active=False):
            services.user_unban(user=user, actor=request.user)
        self.message_user(request, "Ban lifted.", messages.SUCCESS)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "last_used_at"]
    list_select_related = ["user"]
    search_fields = ["name", "user__username", "prefix"]
    readonly_fields = ["user", "name", "prefix", "key_hash", "created_at", "last_used_at"]

    def has_add_permission(self, request):
        # Tokens are made by their owners, who see the secret once.
        return False
