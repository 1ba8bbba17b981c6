from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        from allauth.account.signals import password_changed, password_reset, password_set
        from allauth.mfa.signals import authenticator_added, authenticator_removed
        from django.db.models.signals import post_delete

        from accounts import sessions
        from accounts.models import ApiToken

        for signal in (password_changed, password_set, authenticator_added, authenticator_removed):
            signal.connect(sessions.end_other_sessions, dispatch_uid=f"accounts.end_other_sessions.{id(signal)}")
        password_reset.connect(sessions.end_all_sessions, dispatch_uid="accounts.end_all_sessions")
        post_delete.connect(sessions.token_deleted, sender=ApiToken, dispatch_uid="accounts.token_deleted")
