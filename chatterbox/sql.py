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

