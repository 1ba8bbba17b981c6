from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "Chat"

    def ready(self):
        from accounts.signals import session_moved, signed_out, user_banned, user_key_changed
        from chat import events

        user_banned.connect(events.relay_user_banned, dispatch_uid="chat.relay_user_banned")
        signed_out.connect(events.relay_signed_out, dispatch_uid="chat.relay_signed_out")
        session_moved.connect(events.relay_session_moved, dispatch_uid="chat.relay_session_moved")
        user_key_changed.connect(events.relay_key_changed, dispatch_uid="chat.relay_key_changed")
