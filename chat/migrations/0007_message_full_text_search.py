"""Full-text search of message bodies: a GIN index on PostgreSQL, an FTS5 table on SQLite (chat/search.py)."""

from django.db import migrations


def install(apps, schema_editor):
    from chat.search import search_index_install

    search_index_install(schema_editor.connection)


def remove(apps, schema_editor):
    from chat.search import search_index_remove

    search_index_remove(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("chat", "0006_channel_name_unique_ignoring_case")]

    operations = [migrations.RunPython(install, remove, elidable=False)]
