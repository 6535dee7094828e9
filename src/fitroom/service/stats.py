"""Shoppers' ratings as success rates, and retention: photos and results deleted after the retention period unless
the shopper agreed to share them (the rows stay, for the statistics)."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from fitroom.service import storage
from fitroom.service.objects import ObjectStore
from fitroom.service.storage import ratings, tryons

logger = logging.getLogger(__name__)


def success_rates(db: Engine) -> dict:
    """Success rate (good ratings / ratings) by day, by engine and model version, and by guidance outcome."""
    with db.connect() as connection:
        rows = connection.execute(sa.select(ratings.c.good, ratings.c.created_at, tryons.c.engine,
                                            tryons.c.model_version, tryons.c.guidance)
                                  .select_from(ratings.join(tryons, ratings.c.tryon_id == tryons.c.id))).fetchall()
        counts = dict(connection.execute(sa.select(tryons.c.status, sa.func.count())
                                         .group_by(tryons.c.status)).fetchall())

    def rate_of(groups: dict[str, list[bool]]) -> list[dict]:
        return [{"key": key, "ratings": len(v), "good": sum(v), "success_rate": sum(v) / len(v)}
                for key, v in sorted(groups.items())]

    by_day, by_model, by_guidance = defaultdict(list), defaultdict(list), defaultdict(list)
    for row in rows:
        by_day[storage.aware(row.created_at).date().isoformat()].append(row.good)
        by_model[f"{row.engine} {row.model_version}"].append(row.good)
        by_guidance[row.guidance or "unknown"].append(row.good)
    total = [row.good for row in rows]
    return {"ratings": len(total), "success_rate": (sum(total) / len(total)) if total else None,
            "tryons": counts, "by_day": rate_of(by_day), "by_model": rate_of(by_model),
            "by_guidance": rate_of(by_guidance)}


def latest_rated(db: Engine, limit: int = 20) -> list[str]:
    """The ids of the ``limit`` try-ons rated last, newest first."""
    with db.connect() as connection:
        rows = connection.execute(sa.select(tryons.c.id).select_from(
            ratings.join(tryons, ratings.c.tryon_id == tryons.c.id)).order_by(ratings.c.created_at.desc())
            .limit(limit)).fetchall()
    return [r.id for r in rows]


def expire(db: Engine, store: ObjectStore, retention_hours: float, at: dt.datetime | None = None) -> int:
    """Delete the photos and results of try-ons older than the retention period whose shoppers did not agree
    to share them; the rows stay (for the statistics) marked ``expired``. Returns how many were expired."""
    cutoff = (at or storage.now()) - dt.timedelta(hours=retention_hours)
    with db.begin() as connection:
        rows = connection.execute(sa.select(tryons.c.id, tryons.c.photo, tryons.c.result).where(
            (tryons.c.created_at < cutoff) & (tryons.c.share.is_(False)) & (tryons.c.photo.is_not(None))
            & tryons.c.status.in_(("done", "failed")))).fetchall()
        for row in rows:
            connection.execute(tryons.update().where(tryons.c.id == row.id)
                               .values(photo=None, result=None, status="expired"))
    for row in rows:
        store.delete(row.photo, row.result, storage.analysis_file(row.photo))
    if rows:
        logger.info("retention: removed the photos of %d try-ons", len(rows))
    return len(rows)
