"""Delete uploads that were never sent in a message (run it periodically: a scheduler or Procfile)."""

from django.conf import settings
from django.core.management.base import BaseCommand

from chat import services


class Command(BaseCommand):
    help = "Delete attachments never used in a message within ATTACHMENT_ORPHAN_SECONDS (or --older-than)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            default=None,
            help=f"seconds (default ATTACHMENT_ORPHAN_SECONDS, now {settings.ATTACHMENT_ORPHAN_SECONDS})",
        )

    def handle(self, *args, older_than=None, **options):
        deleted = services.attachments_cleanup(older_than_seconds=older_than)
        self.stdout.write(f"Deleted {deleted} unsent attachment(s).")
