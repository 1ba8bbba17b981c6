"""Full-text search of plaintext conversations, on PostgreSQL and on SQLite.

PostgreSQL matches `to_tsvector('english', body)` (a GIN expression index) against the words of
the query, ranks with `ts_rank` and cuts snippets with `ts_headline`. SQLite keeps an FTS5 table
(`chat_message_fts`, Porter stemming) in step with `chat_message` through triggers, ranks with
`bm25` and cuts snippets with `snippet()`. Both read the query as plain words that must all
appear (stemmed: "deploying" finds "deploy"); no operator syntax reaches either engine.

Only messages of plaintext conversations the user is a member of are searched; encrypted
history is searched in the browser (static/chat/js/search.js) and never reaches the server.
"""

import re
from datetime import datetime, time

from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from accounts.models import User
from chat import events
from chat.models import Conversation, Membership, Message
from chat.services.reactions import reactions_attach
from chatterbox.errors import Invalid, NotMember

PAGE_SIZE = 20
PAGE_MAX = 50
QUERY_MAX = 200
TERMS_MAX = 12
# Marks around matched words inside the engines' snippets; split out before the JSON is built.
START, STOP = "\x02", "\x03"
WORD = re.compile(r"\w+", re.UNICODE)

FTS_TABLE = "chat_message_fts"
SQLITE_SETUP = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS chat_message_fts USING fts5("
    "body, content='chat_message', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS chat_message_fts_insert AFTER INSERT ON chat_message BEGIN"
    " INSERT INTO chat_message_fts(rowid, body) VALUES (new.id, new.body); END",
    "CREATE TRIGGER IF NOT EXISTS chat_message_fts_delete AFTER DELETE ON chat_message BEGIN"
    " INSERT INTO chat_message_fts(chat_message_fts, rowid, body) VALUES ('delete', old.id, old.body); END",
    "CREATE TRIGGER IF NOT EXISTS chat_message_fts_update AFTER UPDATE OF body ON chat_message BEGIN"
    " INSERT INTO chat_message_fts(chat_message_fts, rowid, body) VALUES ('delete', old.id, old.body);"
    " INSERT INTO chat_message_fts(rowid, body) VALUES (new.id, new.body); END",
]
SQLITE_TRIGGERS = {f"{FTS_TABLE}_insert", f"{FTS_TABLE}_delete", f"{FTS_TABLE}_update"}
POSTGRES_INDEX = "chat_message_body_search"


def search_index_install(schema_connection=connection) -> None:
    """Create the search index of this database (idempotent); on SQLite rebuild it if triggers were lost.

    SQLite's schema editor rebuilds a table to alter it, which drops its triggers; so this also
    runs after every `migrate` (chat/apps.py), and refills the FTS table when it had to put
    the triggers back.
    """
    with schema_connection.cursor() as cursor:
        if schema_connection.vendor == "postgresql":
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {POSTGRES_INDEX} ON chat_message USING GIN (to_tsvector('english', body))"
            )
        elif schema_connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'chat_message'")
            present = {row[0] for row in cursor.fetchall()}
            for statement in SQLITE_SETUP:
                cursor.execute(statement)
            if not present >= SQLITE_TRIGGERS:
                cursor.execute("INSERT INTO chat_message_fts(chat_message_fts) VALUES ('rebuild')")


def search_index_remove(schema_connection=connection) -> None:
    with schema_connection.cursor() as cursor:
        if schema_connection.vendor == "postgresql":
            cursor.execute(f"DROP INDEX IF EXISTS {POSTGRES_INDEX}")
        elif schema_connection.vendor == "sqlite":
            for trigger in sorted(SQLITE_TRIGGERS):
                cursor.execute(f"DROP TRIGGER IF EXISTS {trigger}")
            cursor.execute("DROP TABLE IF EXISTS chat_message_fts")


def message_search(
    *,
    user: User,
    query: str,
    conversation_id: int | None = None,
    sender: str | None = None,
    before: str | None = None,
    after: str | None = None,
    page: int = 1,
) -> tuple[list[dict], bool]:
    """Return one page of the user's plaintext messages matching every word of the query, best first."""
    terms = _terms(query)
    candidates = _candidates(user=user, conversation_id=conversation_id, sender=sender, before=before, after=after)
    offset = (page - 1) * PAGE_SIZE
    subquery, params = candidates.values("id").query.sql_with_params()
    if connection.vendor == "postgresql":
        rows = _postgres_hits(terms, subquery, params, offset)
    else:
        rows = _sqlite_hits(terms, subquery, params, offset)
    has_more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    found = Message.objects.visible_to(user).in_bulk([row[0] for row in rows])
    reactions_attach(found.values())
    results = []
    for message_id, marked in rows:
        message = found.get(message_id)
        if message is None:  # deleted or left between the two queries
            continue
        snippet, highlights = _split_marks(marked)
        results.append(
            {
                "message": events.message_json_for(message),
                "conversation": {
                    "id": message.conversation_id,
                    "kind": message.conversation.kind,
                    "name": message.conversation.name,
                },
                "snippet": snippet,
                "highlights": highlights,
            }
        )
    return results, has_more


def _terms(query: str) -> list[str]:
    if not isinstance(query, str) or not query.strip():
        raise Invalid("Type something to search for.", field="q")
    if len(query) > QUERY_MAX:
        raise Invalid(f"The search text is too long (at most {QUERY_MAX} characters).", field="q")
    terms = WORD.findall(query)
    if not terms:
        raise Invalid("Search for words or numbers.", field="q")
    return terms[:TERMS_MAX]


def _candidates(*, user, conversation_id, sender, before, after):
    """Return the messages the user may find: text in plaintext conversations they belong to."""
    memberships = Membership.objects.filter(user=user, conversation__encrypted=False)
    rows = Message.objects.filter(
        conversation__in=memberships.values("conversation"), kind=Message.Kind.TEXT, deleted_at__isnull=True
    ).exclude(body="")
    if conversation_id is not None:
        conversation = Conversation.objects.filter(pk=conversation_id).first()
        if conversation is None or not Membership.objects.filter(conversation=conversation, user=user).exists():
            raise NotMember("You are not a member of that conversation.", field="conversation")
        if conversation.encrypted:
            raise Invalid("Encrypted conversations are searched in your browser.", field="conversation")
        rows = rows.filter(conversation_id=conversation_id)
    if sender:
        rows = rows.filter(sender__username__iexact=sender)
    if before:
        rows = rows.filter(created_at__lt=_moment(before, "before", end_of_day=False))
    if after:
        rows = rows.filter(created_at__gte=_moment(after, "after", end_of_day=True))
    return rows.order_by()


def _moment(value: str, field: str, *, end_of_day: bool) -> datetime:
    """Parse an ISO 8601 time, or a date: `before` a date means before it starts, `after` once it ends."""
    try:
        moment = parse_datetime(value)
        day = None if moment else parse_date(value)
    except ValueError:
        moment = day = None
    if day is not None:
        moment = datetime.combine(day, time.max if end_of_day else time.min)
    if moment is None:
        raise Invalid(f"{field} must be an ISO 8601 date or time.", field=field)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_current_timezone())
    return moment


def _postgres_hits(terms, subquery, params, offset):
    options = f'StartSel={START}, StopSel={STOP}, MaxWords=24, MinWords=10, MaxFragments=2, FragmentDelimiter=" … "'
    # `subquery` is SQL that Django compiled from the candidates' queryset, with its own params.
    sql = (
        "SELECT m.id, ts_headline('english', m.body, q, %s)"  # noqa: S608
        " FROM chat_message m, plainto_tsquery('english', %s) q"
        f" WHERE to_tsvector('english', m.body) @@ q AND m.id IN ({subquery})"
        " ORDER BY ts_rank(to_tsvector('english', m.body), q) DESC, m.id DESC LIMIT %s OFFSET %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [options, " ".join(terms), *params, PAGE_SIZE + 1, offset])
        return cursor.fetchall()


def _sqlite_hits(terms, subquery, params, offset):
    # Each word quoted as an FTS5 string, so nothing the user types is read as query syntax.
    match = " ".join('"{}"'.format(term.replace('"', '""')) for term in terms)
    # `subquery` is SQL that Django compiled from the candidates' queryset, with its own params.
    sql = (
        "SELECT m.id, snippet(chat_message_fts, 0, %s, %s, '…', 24)"  # noqa: S608
        " FROM chat_message_fts JOIN chat_message m ON m.id = chat_message_fts.rowid"
        f" WHERE chat_message_fts MATCH %s AND m.id IN ({subquery})"
        " ORDER BY bm25(chat_message_fts), m.id DESC LIMIT %s OFFSET %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [START, STOP, match, *params, PAGE_SIZE + 1, offset])
        return cursor.fetchall()


def _split_marks(marked: str) -> tuple[str, list[list[int]]]:
    """Return the snippet without marks, and the [start, end) character ranges that matched."""
    text, highlights, position, start = [], [], 0, None
    for char in marked:
        if char == START:
            start = position
        elif char == STOP and start is not None:
            highlights.append([start, position])
            start = None
        else:
            text.append(char)
            position += 1
    return "".join(text), highlights
