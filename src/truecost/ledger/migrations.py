"""Schema migrations: an older ledger database is brought to the current schema in place, when it is opened.

The version lives in `ledger_meta` (key `schema_version`). `upgrade(connection)` runs on every open, inside one
transaction that holds a lock (PostgreSQL: an advisory transaction lock; SQLite: the write lock that the store's
`BEGIN IMMEDIATE` takes), so several processes opening an old ledger at once migrate it exactly once and none of
them ever sees half a migration:

- a new, empty database gets every table at the current version (`schema.Base.metadata.create_all`);
- an older one runs the missing steps of `MIGRATIONS` in order and records the new version in the same
  transaction (PostgreSQL and SQLite both roll DDL back with it, so a failed step leaves the old schema whole);
- a current one costs one read;
- a newer one is left alone, and the store refuses it: an older truecost must not write a schema it does not know.

To change the schema (append only; never edit a step that has shipped):
1. change the table classes in `schema.py`; they describe the *current* schema, what a new database gets;
2. bump `SCHEMA_VERSION` in `schema.py`;
3. append `Migration(N, "what and why", _to_vN)` to `MIGRATIONS`, where `_to_vN(connection)` turns a version
   N-1 database into what `create_all` makes at N. Spell the columns out in the step (`add_column(connection,
   "requests", Column("team", String(100), nullable=False, server_default=""))`, `add_index`, `create_table`)
   instead of reusing the classes of `schema.py`, so the step keeps its meaning after later changes; a data fix
   reads and writes through `sqlalchemy.table(...)`/`column(...)` for the same reason. A new NOT NULL column
   needs a `server_default` (there, and in `schema.py`) so that existing rows get a value;
4. `tests/ledger/test_migrations.py` builds a v1 database with data in it, opens it, and checks that the migrated
   schema has the same tables, columns and indexes as a new one (SQLite and PostgreSQL): extend its checks with
   what your step must preserve.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    column,
    inspect,
    select,
    table,
    text,
    update,
)
from sqlalchemy.schema import CreateColumn

from truecost.errors import UserError
from truecost.ledger.schema import SCHEMA_VERSION, Base, MetaRow

# "truecost" as a signed 64-bit key: the advisory lock that serialises schema changes on one PostgreSQL database.
_PG_LOCK_KEY = int.from_bytes(b"truecost", "big")
_VERSION_KEY = "schema_version"


@dataclass(frozen=True)
class Migration:
    """One step: `apply` turns a database at `version - 1` into one at `version`."""

    version: int
    description: str
    apply: Callable[[Connection], None]


# -- building blocks for steps ------------------------------------------------------------------------------------
def add_column(connection: Connection, table_name: str, new_column: Column[Any]) -> None:
    """ALTER TABLE ... ADD COLUMN, rendered for the connection's database from a SQLAlchemy Column."""
    Table(table_name, MetaData(), new_column)  # a column renders only as part of a table
    ddl = CreateColumn(new_column).compile(dialect=connection.dialect)
    quote = connection.dialect.identifier_preparer.quote
    connection.exec_driver_sql(f"ALTER TABLE {quote(table_name)} ADD COLUMN {ddl}")


def add_index(connection: Connection, table_name: str, index_name: str, *column_names: str) -> None:
    """CREATE INDEX on existing columns."""
    quote = connection.dialect.identifier_preparer.quote
    columns = ", ".join(quote(name) for name in column_names)
    connection.exec_driver_sql(f"CREATE INDEX {quote(index_name)} ON {quote(table_name)} ({columns})")


def create_table(connection: Connection, new_table: Table) -> None:
    """CREATE TABLE (with its indexes) from a Table defined in the step itself."""
    new_table.create(connection)


# -- the steps ----------------------------------------------------------------------------------------------------
def _to_v2(connection: Connection) -> None:
    """Runs record their host, pid and heartbeat (to find dead runs), and a parent keeps only its own share."""
    add_column(connection, "runs", Column("host", String(200), nullable=False, server_default=""))
    add_column(connection, "runs", Column("pid", Integer, nullable=True))
    add_column(connection, "runs", Column("heartbeat_at", DateTime(timezone=True), nullable=True))
    add_column(connection, "runs", Column("heartbeat_seconds", Float, nullable=True))
    _parents_keep_their_own_share(connection)


_SHARED_MEASURES = ("wall_seconds", "cpu_seconds", "energy_kwh", "cost_usd")


def _parents_keep_their_own_share(connection: Connection) -> None:
    """v1 parents (demo, tune) metered their children too, in the same process; keep only what is theirs.

    From v2 the meter subtracts nested runs itself. The v1 figures are kept in `results.measured_with_children`.
    """
    runs = table("runs", column("id"), column("parent_id"), column("results", JSON),
                 *(column(name, Float) for name in _SHARED_MEASURES))
    rows = {row.id: row for row in connection.execute(select(runs))}
    children: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(_SHARED_MEASURES, 0.0))
    for row in rows.values():
        if row.parent_id in rows:
            for name in _SHARED_MEASURES:
                children[row.parent_id][name] += float(getattr(row, name) or 0.0)
    for parent_id, spent in children.items():
        parent = rows[parent_id]
        before = {name: float(getattr(parent, name) or 0.0) for name in _SHARED_MEASURES}
        own = {name: max(0.0, before[name] - spent[name]) for name in _SHARED_MEASURES}
        results = {**dict(parent.results or {}), "measured_with_children": before}
        connection.execute(update(runs).where(runs.c.id == parent_id).values(results=results, **own))


def _to_v3(connection: Connection) -> None:
    """Requests say who they were for (team, user, tags) and what the cache saved; budget counters for gateways."""
    add_column(connection, "requests", Column("team", String(100), nullable=False, server_default=""))
    add_column(connection, "requests", Column("user", String(200), nullable=False, server_default=""))
    add_column(connection, "requests", Column("tags", String(1000), nullable=False, server_default=""))
    add_column(connection, "requests", Column("cache_hit", Boolean, nullable=False, server_default="0"))
    add_column(connection, "requests", Column("saved_usd", Float, nullable=False, server_default="0"))
    add_index(connection, "requests", "ix_requests_team", "team")
    add_index(connection, "requests", "ix_requests_user", "user")
    create_table(connection, Table(
        "budget_counters", MetaData(),
        Column("id", String(400), primary_key=True),
        Column("scope", String(16), nullable=False),
        Column("name", String(200), nullable=False),
        Column("period", String(16), nullable=False),
        Column("period_start", DateTime(timezone=True), nullable=False),
        Column("period_end", DateTime(timezone=True), nullable=True),
        Column("spent_usd", Float, nullable=False),
        Column("reserved_usd", Float, nullable=False)))


MIGRATIONS: list[Migration] = [
    Migration(2, "runs: host, pid, heartbeat_at, heartbeat_seconds; parents keep only their own share", _to_v2),
    Migration(3, "requests: team, user, tags, cache_hit, saved_usd; budget_counters (gateway budgets)", _to_v3),
]


# -- applying them ------------------------------------------------------------------------------------------------
def upgrade(connection: Connection) -> tuple[int, int]:
    """Bring the database behind `connection` to SCHEMA_VERSION; returns (version found, version now).

    Call inside a transaction; a found version newer than SCHEMA_VERSION is left untouched for the caller to
    refuse.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    tables = set(inspect(connection).get_table_names())
    found = _stored_version(connection, tables)
    if found is None and "runs" not in tables:  # a new database
        Base.metadata.create_all(connection)
        _write_version(connection, SCHEMA_VERSION, insert=True)
        return SCHEMA_VERSION, SCHEMA_VERSION
    if found is None:  # v1 tables whose version row was never written (a v1 open died in between)
        Base.metadata.create_all(connection, tables=[Base.metadata.tables[MetaRow.__tablename__]])
        _write_version(connection, 1, insert=True)
        found = 1
    if found >= SCHEMA_VERSION:
        return found, found
    for step in MIGRATIONS:
        if step.version > found:
            step.apply(connection)
    _write_version(connection, SCHEMA_VERSION, insert=False)
    return found, SCHEMA_VERSION


def _stored_version(connection: Connection, tables: set[str]) -> int | None:
    if MetaRow.__tablename__ not in tables:
        return None
    value = connection.execute(select(MetaRow.value).where(MetaRow.key == _VERSION_KEY)).scalar()
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:  # not a version this or any truecost wrote: refuse rather than migrate a stranger's data
        raise UserError(f"the ledger's schema version {value!r} is not a number: the database is damaged or "
                        "not a truecost ledger") from None


def _write_version(connection: Connection, version: int, *, insert: bool) -> None:
    meta = Base.metadata.tables[MetaRow.__tablename__]
    if insert:
        connection.execute(meta.insert().values(key=_VERSION_KEY, value=str(version)))
    else:
        connection.execute(meta.update().where(meta.c.key == _VERSION_KEY).values(value=str(version)))

