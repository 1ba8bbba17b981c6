from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _search_index_restore(sender, using, **kwargs):
    """Put back the SQLite search triggers that a table rebuild by a later migration dropped."""
    from django.db import connections

    from chat.search import FTS_TABLE, search_index_install

    connection = connections[using]
    # Only once the search migration has made the table: before it, there is nothing to restore.
    if connection.vendor == "sqlite" and FTS_TABLE in connection.introspection.table_names():
        search_index_install(connection)


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
        post_migrate.connect(_search_index_restore, sender=self, dispatch_uid="chat.search_index_restore")
