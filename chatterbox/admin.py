"""The admin site: every account-related model under one "Accounts" heading."""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig

# Django's permission groups, allauth's email addresses, two-factor authenticators and sessions all
# describe accounts; moderators look for them next to the users, not under three more headings.
ACCOUNT_APP_LABELS = ("auth", "account", "mfa", "usersessions")


class ChatterboxAdminSite(admin.AdminSite):
    site_header = "Chatterbox administration"
    site_title = "Chatterbox admin"
    # The app list is on the index and in the breadcrumbs; the sidebar copy of it took 300 px
    # that the user list needs to fit a 1280 px window.
    enable_nav_sidebar = False

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        accounts = next((app for app in apps if app["app_label"] == "accounts"), None)
        if accounts is None:
            return apps
        for app in [app for app in apps if app["app_label"] in ACCOUNT_APP_LABELS]:
            accounts["models"].extend(app["models"])
            apps.remove(app)
        accounts["models"].sort(key=lambda model: model["name"])
        return apps


class ChatterboxAdminConfig(AdminConfig):
    default_site = "chatterbox.admin.ChatterboxAdminSite"
