"""Refuse, in the database itself, any UPDATE that changes a conversation's kind or encryption.

The model and its queryset refuse it already; this catches raw SQL and anything else that
goes around them. Both engines abort the statement with a constraint error (IntegrityError).
"""

from django.db import migrations

MESSAGE = "conversation kind and encrypted never change"

POSTGRES_CREATE = f"""
CREATE OR REPLACE FUNCTION chat_conversation_frozen() RETURNS trigger AS $$
BEGIN
    IF NEW.kind IS DISTINCT FROM OLD.kind OR NEW.encrypted IS DISTINCT FROM OLD.encrypted THEN
        RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER chat_conversation_frozen BEFORE UPDATE ON chat_conversation
    FOR EACH ROW EXECUTE FUNCTION chat_conversation_frozen();
"""
POSTGRES_DROP = """
DROP TRIGGER IF EXISTS chat_conversation_frozen ON chat_conversation;
DROP FUNCTION IF EXISTS chat_conversation_frozen();
"""
SQLITE_CREATE = f"""
CREATE TRIGGER chat_conversation_frozen BEFORE UPDATE OF kind, encrypted ON chat_conversation
WHEN NEW.kind IS NOT OLD.kind OR NEW.encrypted IS NOT OLD.encrypted
BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;
"""
SQLITE_DROP = "DROP TRIGGER IF EXISTS chat_conversation_frozen;"


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_CREATE)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_CREATE)


def drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_DROP)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_DROP)


class Migration(migrations.Migration):
    dependencies = [("chat", "0003_attachments")]

    operations = [migrations.RunPython(create, drop)]
