"""Make a fresh Chatterbox database for the benchmark and print what the load generator needs.

    python bench/prepare.py SPEC_JSON   (run with the server's environment: DATABASE_URL or SQLITE_PATH)

SPEC: {"channels": [members, ...], "pairs": N}. Prints JSON: {"channels": [{"id", "cookies"}],
"pairs": [{"id", "cookies": [a, b]}]}, one session cookie per member. Users are made in bulk and
sessions written directly: the benchmark measures the message path, not sign-up.
"""

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    spec = json.loads(sys.argv[1])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatterbox.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import User
    from chat import services
    from chat.models import Membership

    call_command("migrate", verbosity=0)
    if os.environ.get("REDIS_URL"):
        import redis

        # Only the benchmark's own keys: the database may be shared (the test suite's smoke run).
        client = redis.Redis.from_url(os.environ["REDIS_URL"])
        for prefix in {os.environ["CHANNEL_LAYER_PREFIX"], os.environ["CACHE_KEY_PREFIX"]}:
            for key in client.scan_iter(match=f"{prefix}*", count=1000):
                client.unlink(key)
    counter = iter(range(10**9))

    def users(count: int) -> list:
        made = [User(username=f"b{next(counter)}", email="") for _ in range(count)]
        return User.objects.bulk_create(made)

    def cookie(user) -> str:
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        return session.session_key

    result = {"channels": [], "pairs": []}
    for index, members in enumerate(spec.get("channels", [])):
        people = users(members)
        channel, _ = services.conversation_create(creator=people[0], kind="channel", name=f"bench-{index}")
        Membership.objects.bulk_create([Membership(conversation=channel, user=user) for user in people[1:]])
        result["channels"].append({"id": channel.pk, "cookies": [cookie(user) for user in people]})
    for _ in range(spec.get("pairs", 0)):
        first, second = users(2)
        # A plaintext group of two: direct conversations are always end-to-end encrypted.
        pair, _ = services.conversation_create(
            creator=first, kind="group", name="pair", members=[second.username], encrypted=False
        )
        result["pairs"].append({"id": pair.pk, "cookies": [cookie(first), cookie(second)]})
    if connection.vendor == "postgresql":
        # Rows made in bulk a moment ago have no statistics yet (a live database gets them from
        # autovacuum within a minute of such growth): without them PostgreSQL plans the connect's
        # queries as sequential scans, five to ten times slower than the index scans they become.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
