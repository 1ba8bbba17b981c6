"""Public channel names are unique regardless of case.

Channels that already share a name in some case keep the oldest one's name; the others get
their id appended (e.g. "General (12)"), so the constraint can be added.
"""

import django.db.models.functions.text
from django.conf import settings
from django.db import migrations, models


def rename_duplicates(apps, schema_editor):
    Conversation = apps.get_model("chat", "Conversation")
    seen = set()
    for channel in Conversation.objects.filter(kind="channel").order_by("id").only("id", "name"):
        key = channel.name.lower()
        if key in seen:
            suffix = f" ({channel.pk})"
            channel.name = channel.name[: 80 - len(suffix)] + suffix
            Conversation.objects.filter(pk=channel.pk).update(name=channel.name)
        seen.add(channel.name.lower())


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0005_message_system"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(rename_duplicates, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="conversation",
            constraint=models.UniqueConstraint(
                django.db.models.functions.text.Lower("name"),
                condition=models.Q(("kind", "channel")),
                name="channel_name_unique_ci",
            ),
        ),
    ]
