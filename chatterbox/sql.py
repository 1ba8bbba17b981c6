"""Model rows read in SQL written once, for the hot paths where building an ORM query costs more
than running it (a socket's sign-in, a history page)."""

from django.db import connection


class ModelColumns:
    """A model's concrete columns in SQL written once, and instances made from them as the ORM makes them.

    `sql` names the columns under a table alias; `make` turns the matching slice of a row into an
    instance, with the same conversions a query set applies (times on SQLite, JSON fields) and
    None for the null side of an outer join. With `only`, the other fields are deferred, as with
    `QuerySet.only` (read on first use).
    """

    def __init__(self, model, alias: str, only: tuple[str, ...] = ()):
        self.model, self.alias = model, alias
        self.fields = [field for field in model._meta.concrete_fields if not only or field.attname in ("id", *only)]
        self.attnames = [field.attname for field in self.fields]
        self.width = len(self.fields)
        self._converters: dict[str, list] = {}

    @property
    def sql(self) -> str:
        return ", ".join(f"{self.alias}.{connection.ops.quote_name(field.column)}" for field in self.fields)

    def _converters_for(self, db) -> list:
        found = self._converters.get(db.alias)
        if found is None:
            found = []
            for index, field in enumerate(self.fields):
                column = field.get_col(self.alias)
                functions = db.ops.get_db_converters(column) + column.get_db_converters(db)
                if functions:
                    found.append((index, column, functions))
            self._converters[db.alias] = found
        return found

    def make(self, row, start: int = 0, db=connection):
        """The instance in `row` from `start` (pass `db`, the connection itself, when making many)."""
        values = list(row[start : start + self.width])
        if values[0] is None:  # an outer join found nothing (the primary key comes first)
            return None
        for index, column, functions in self._converters_for(db):
            for function in functions:
                values[index] = function(values[index], column, db)
        return self.model.from_db(db.alias, self.attnames, values)


def insert_returning_ids(objects: list) -> None:
    """Insert new instances of one model in one statement, as `bulk_create` does (each field's
    `pre_save`, so defaults and `auto_now` apply), and give each its primary key.

    The statement is assembled from the model's columns, not compiled by the ORM: on the message
    path that compilation cost more than the insert. On PostgreSQL several rows go as one array
    per column (UNNEST, as Django's own bulk insert does there): the same statement for any
    count, so psycopg and the server prepare it once. Rows come back in the order they were
    given, as `bulk_create` relies on too (PostgreSQL, and SQLite with RETURNING).
    """
    if not objects:
        return
    meta = objects[0]._meta
    quote = connection.ops.quote_name
    fields = [field for field in meta.concrete_fields if field is not meta.pk]
    values = [[field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields] for obj in objects]
    if connection.vendor == "postgresql" and len(objects) > 1:
        # As Django's: db types without their size, so that nothing is cut (varchar[], not varchar(64)[]).
        arrays = ", ".join(f"(%s)::{field.db_type(connection).split('(')[0]}[]" for field in fields)
        rows = f"SELECT * FROM UNNEST({arrays})"  # noqa: S608 - names and types from the model, values all parameters
        params = [list(column) for column in zip(*values, strict=True)]
    else:
        row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        rows, params = f"VALUES {', '.join([row] * len(objects))}", [value for row in values for value in row]
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) "
        f"{rows} RETURNING {quote(meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = cursor.fetchall()
    for obj, (pk,) in zip(objects, ids, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias


def id_in(column: str, ids) -> tuple[str, list]:
    """SQL saying that `column` is one of `ids`, and its parameters. On PostgreSQL one array
    parameter (`= ANY`), so that one prepared statement serves any number of ids; elsewhere IN.
    No ids: the SQL is false and the parameters empty."""
    ids = list(ids)
    if not ids:
        return "FALSE", []
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", [ids]
    return f"{column} IN ({', '.join(['%s'] * len(ids))})", ids
