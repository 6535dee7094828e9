"""Storage: SQLAlchemy Core tables, numbered migrations, and image files under the data directory.

SQLite (WAL journal, foreign keys on) by default; any SQLAlchemy URL (PostgreSQL) works. Migrations are numbered
functions applied in order inside a transaction, each recorded in ``schema_version``; a database newer than the
code is refused. Images live in the image store (:mod:`fitroom.service.objects`: ``garments/``, ``photos/``,
``results/``); rows hold their keys.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from fitroom.errors import ConfigurationError

logger = logging.getLogger(__name__)

metadata = sa.MetaData()

schema_version = sa.Table("schema_version", metadata, sa.Column("version", sa.Integer, primary_key=True),
                          sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False))

garments = sa.Table(
    "garments", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("category", sa.String(16), nullable=False),
    sa.Column("front", sa.String(300), nullable=False),  # relative paths of the product photos and their masks
    sa.Column("front_mask", sa.String(300), nullable=False),
    sa.Column("back", sa.String(300)),
    sa.Column("back_mask", sa.String(300)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # a deleted garment keeps its row (its try-ons and their statistics refer to it); its photos are removed
    sa.Column("deleted_at", sa.DateTime(timezone=True)),
)

tryons = sa.Table(
    "tryons", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("garment_id", sa.String(32), sa.ForeignKey("garments.id"), nullable=False),
    sa.Column("view", sa.String(16), nullable=False),  # a fitroom.labels.View value
    sa.Column("status", sa.String(16), nullable=False),  # queued, running, done, failed, expired
    sa.Column("photo", sa.String(300)),  # relative paths; None once deleted by retention
    sa.Column("result", sa.String(300)),
    sa.Column("error", sa.Text),
    sa.Column("guidance", sa.String(8)),  # the photo's guidance outcome: pass, warn, fail (forced)
    sa.Column("engine", sa.String(32), nullable=False),
    sa.Column("model_version", sa.String(200), nullable=False),
    sa.Column("share", sa.Boolean, nullable=False),  # the shopper agreed to keep the photos for fine-tuning
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("seconds", sa.Float),
    # the job queue (:mod:`fitroom.service.queue`): which worker holds a running job, until when, and how many
    # times the job was started
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("worker", sa.String(64)),
    sa.Column("lease_until", sa.DateTime(timezone=True)),
)

#: try-on workers, in any process on any machine: each says it is alive (``seen_at``) while it runs
workers = sa.Table(
    "workers", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
)

#: every product photo of a garment, one row per view (front, back, side-left, side-right); the garments table's
#: front and back columns are kept in step for readers of schema 3
garment_photos = sa.Table(
    "garment_photos", metadata,
    sa.Column("garment_id", sa.String(32), sa.ForeignKey("garments.id"), primary_key=True),
    sa.Column("view", sa.String(16), primary_key=True),
    sa.Column("photo", sa.String(300), nullable=False),  # relative paths of the product photo and its mask
    sa.Column("mask", sa.String(300), nullable=False),
)

ratings = sa.Table(
    "ratings", metadata,
    sa.Column("tryon_id", sa.String(32), sa.ForeignKey("tryons.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("good", sa.Boolean, nullable=False),
    sa.Column("reason", sa.String(500)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


def _v1(connection: Connection) -> None:
    metadata.create_all(connection, tables=[garments, tryons, ratings])


def _v2(connection: Connection) -> None:
    # plain SQL: an sa.Index object would attach itself to the table and be created by _v1 on the next database
    connection.execute(sa.text("CREATE INDEX IF NOT EXISTS ix_tryons_created_at ON tryons (created_at)"))


def _v3(connection: Connection) -> None:
    # _v1 builds tables from today's definitions, which already have the column on a new database
    if "deleted_at" not in {c["name"] for c in sa.inspect(connection).get_columns("garments")}:
        connection.execute(sa.text("ALTER TABLE garments ADD COLUMN deleted_at TIMESTAMP"))


def _v4(connection: Connection) -> None:
    garment_photos.create(connection, checkfirst=True)
    have = {(r.garment_id, r.view) for r in connection.execute(sa.select(garment_photos.c.garment_id,
                                                                           garment_photos.c.view))}
    for row in connection.execute(sa.select(garments)).fetchall():
        for view in ("front", "back"):
            photo, mask = getattr(row, view), getattr(row, f"{view}_mask")
            if photo and (row.id, view) not in have:
                connection.execute(garment_photos.insert().values(garment_id=row.id, view=view, photo=photo,
                                                                  mask=mask))
    if connection.dialect.name == "postgresql":  # SQLite does not enforce a VARCHAR's length
        connection.execute(sa.text("ALTER TABLE tryons ALTER COLUMN view TYPE VARCHAR(16)"))


def _v5(connection: Connection) -> None:
    # _v1 builds tables from today's definitions: a new database already has the columns
    have = {c["name"] for c in sa.inspect(connection).get_columns("tryons")}
    timestamp = "TIMESTAMP WITH TIME ZONE" if connection.dialect.name == "postgresql" else "TIMESTAMP"
    for name, kind in (("attempts", "INTEGER NOT NULL DEFAULT 0"), ("worker", "VARCHAR(64)"),
                       ("lease_until", timestamp)):
        if name not in have:
            connection.execute(sa.text(f"ALTER TABLE tryons ADD COLUMN {name} {kind}"))
    workers.create(connection, checkfirst=True)
    connection.execute(sa.text("CREATE INDEX IF NOT EXISTS ix_tryons_status ON tryons (status)"))


#: (version, what it does, function); append, never edit
MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "garments, try-ons, ratings", _v1),
    (2, "index try-ons by creation time (retention, stats)", _v2),
    (3, "garments can be deleted (deleted_at)", _v3),
    (4, "a garment's product photos by view (garment_photos), any declared view", _v4),
    (5, "the job queue: attempts and leases of try-ons, workers", _v5),
]


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def new_id() -> str:
    return uuid.uuid4().hex


def connect(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout on every connection."""
    # a server that does not answer is an error within 5 s (readiness, start-up), not a hang
    connect_args = {"connect_timeout": 5} if url.startswith("postgresql") else {}
    try:
        engine = sa.create_engine(url, future=True, pool_pre_ping=True, connect_args=connect_args)
    except ImportError as error:  # the URL names a driver this installation lacks
        shown = sa.engine.make_url(url).render_as_string(hide_password=True)
        extra = ' (pip install "fitroom[postgres]")' if shown.startswith("postgresql") else ""
        raise ConfigurationError(f"the database driver for {shown} is not installed: {error}{extra}") from None
    if engine.dialect.name == "sqlite":
        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()
    return engine


def migrate(engine: Engine) -> int:
    """Apply the migrations the database lacks; returns its version."""
    with engine.begin() as connection:
        schema_version.create(connection, checkfirst=True)
        current = connection.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0
        latest = MIGRATIONS[-1][0]
        if current > latest:
            raise ConfigurationError(f"the database is at schema version {current}, newer than this fitroom "
                                     f"({latest}); upgrade fitroom")
        for version, description, apply in MIGRATIONS:
            if version > current:
                logger.info("database migration %d: %s", version, description)
                apply(connection)
                connection.execute(schema_version.insert().values(version=version, applied_at=now()))
                current = version
    return current


def open_database(url: str) -> tuple[Engine, int]:
    """Connect to ``url`` and bring its schema up to date: ``(engine, schema version)``. A database that cannot
    be reached or read is a :class:`~fitroom.errors.ConfigurationError` whose message shows the URL without its
    password."""
    engine = connect(url)
    try:
        return engine, migrate(engine)
    except sa.exc.SQLAlchemyError as error:
        engine.dispose()
        cause = getattr(error, "orig", None) or error
        shown = sa.engine.make_url(url).render_as_string(hide_password=True)
        raise ConfigurationError(f"cannot open the service's database {shown} "
                                 f"({type(cause).__name__}: {str(cause).strip().splitlines()[0]})") from None


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite returns naive datetimes for timezone-aware columns: they were written in UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


def analysis_file(photo: str | None) -> str | None:
    """Where the models' findings on an uploaded photo (``photos/ID.png``; see
    :class:`~fitroom.preprocess.pipeline.Detections`) wait for its try-on job, which finishes the analysis from them
    (deleted when the job ends, and with the photo)."""
    return None if photo is None else photo.removesuffix(".png") + ".analysis.npz"


