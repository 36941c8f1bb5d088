"""The analysis database: results, jobs and CDS Hooks feedback, in SQLite (embedded) or PostgreSQL (scale).

One SQLAlchemy Core schema serves both engines. Times are stored as UTC; SQLite keeps them naive and
they are made aware again on read. Writes that must happen once whatever the delivery count (a result,
a feedback record) are inserts that ignore a conflicting key, so a second identical write is a no-op.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Dialect,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    make_url,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import TypeDecorator

#: Serialises schema creation when several pods start at once (PostgreSQL advisory lock key).
_SCHEMA_LOCK_KEY = 0x6D736B6364


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every engine."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the analysis store; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

results_table = Table(
    "analysis_results",
    metadata,
    Column("study_instance_uid", String(64), primary_key=True),
    Column("model_key", String(512), primary_key=True),
    Column("result", Text, nullable=False, comment="schemas.analysis.AnalysisResult as JSON"),
    Column("stored_at", UTCDateTime, nullable=False),
)

jobs_table = Table(
    "analysis_jobs",
    metadata,
    Column("job_id", String(36), primary_key=True, comment="uuid5(study_instance_uid | model_key)"),
    Column("study_instance_uid", String(64), nullable=False),
    Column("model_key", String(512), nullable=False),
    Column("ref", Text, nullable=False, comment="app.analysis.StudyRef as JSON"),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error", Text),
    Column("run_after", UTCDateTime, nullable=False, comment="not claimed before (retry backoff)"),
    Column("worker", String(128), comment="the worker running it now"),
    Column("heartbeat_at", UTCDateTime, comment="last sign of life of that worker"),
    Column("delivery", BigInteger, comment="queue job id of the current delivery (scale mode)"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_analysis_jobs_claimable", "model_key", "status", "run_after"),
)

feedback_table = Table(
    "cds_feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service_id", String(128), nullable=False),
    Column("card", String(64), nullable=False, comment="the card's uuid from the CDS Hooks response"),
    Column("outcome", String(16), nullable=False),
    Column("outcome_timestamp", UTCDateTime, nullable=False),
    Column("accepted_suggestions", Text, nullable=False, comment="JSON list of suggestion uuids"),
    Column("override_reason_system", String(256)),
    Column("override_reason_code", String(128)),
    Column("received_at", UTCDateTime, nullable=False),
    UniqueConstraint("service_id", "card", "outcome", "outcome_timestamp", name="uq_cds_feedback_once"),
)


def utcnow() -> datetime:
    """The store's clock (UTC, aware)."""
    return datetime.now(UTC)


def sqlalchemy_url(database_url: str) -> str:
    """The URL with a driver SQLAlchemy has here: plain ``postgresql://`` means psycopg 3."""
    url = make_url(database_url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def create_store_engine(database_url: str) -> Engine:
    """An engine for the analysis store; SQLite gets its folder, WAL and a busy timeout for worker threads."""
    url = make_url(sqlalchemy_url(database_url))
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (hooks) never wait for the writer (worker)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def ensure_schema(engine: Engine) -> None:
    """Create the tables that are missing (idempotent; PostgreSQL pods starting together take turns)."""
    with engine.begin() as connection:
        lock_schema(connection)
        metadata.create_all(connection, checkfirst=True)


def lock_schema(connection: Connection) -> None:
    """Hold the schema lock until this transaction ends (PostgreSQL; SQLite serialises writers anyway)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})


def insert_ignoring_conflict(connection: Connection, table: Table, values: dict[str, Any]) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` in this connection's dialect: the first write of a key wins.

    Add ``.returning(column)`` to learn whether a row was written (rowcount of an INSERT is not reliable).
    """
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).values(**values).on_conflict_do_nothing()
