"""``fitroom feedback export``: rated try-ons whose shoppers agreed to share them, as a VITON-HD layout dataset for
fine-tuning.

Each exported sample is the shopper's photo with every per-person modality (computed again by the preprocessing),
the garment's product photo and mask, the service's result in ``tryon-result/``, and a row of ``feedback.csv``
(rating, reason, view, engine, model version). Only try-ons with ``share`` set, a rating and a result are
exported; ``--only-good`` keeps the ones rated good.
"""

from __future__ import annotations

import csv
import logging
import shutil
from pathlib import Path

import sqlalchemy as sa
from tqdm import tqdm

from fitroom import imaging
from fitroom.data.layout import PAIRS_FILE, VIEWS_FILE, write_pairs
from fitroom.data.prepare import garment_paths, person_paths, write_garment, write_person
from fitroom.errors import ConfigurationError, InputError
from fitroom.labels import GarmentCategory, View
from fitroom.service import storage
from fitroom.service.settings import Settings

logger = logging.getLogger(__name__)

SPLIT = "train"
RESULTS = "tryon-result"


def export_feedback(settings: Settings, out: str | Path, only_good: bool = False, progress: bool = True) -> int:
    """Write the dataset; returns the number of samples."""
    from fitroom.preprocess.pipeline import Preprocessor

    out, root = Path(out), Path(settings.data_dir)
    if not settings.database_url and not (root / "fitroom.db").is_file():
        raise InputError(f"{root.resolve()} is not a fitroom data folder (it has no fitroom.db): give the folder "
                         f"`fitroom serve` writes with --data-dir (or FITROOM_DATA_DIR / FITROOM_DATABASE_URL)")
    try:
        database = storage.connect(settings.database)
        storage.migrate(database)
    except sa.exc.SQLAlchemyError as error:
        raise ConfigurationError(f"cannot open the service's database {settings.database} "
                                 f"({type(error.orig or error).__name__}: {error.orig or error})") from None
    t, r, g = storage.tryons, storage.ratings, storage.garments
    query = (sa.select(t.c.id, t.c.view, t.c.photo, t.c.result, t.c.engine, t.c.model_version, r.c.good, r.c.reason,
                       g.c.id.label("garment"), g.c.category, g.c.front, g.c.back)
             .select_from(t.join(r, r.c.tryon_id == t.c.id).join(g, g.c.id == t.c.garment_id))
             .where(t.c.share.is_(True) & t.c.photo.is_not(None) & t.c.result.is_not(None)
                    & g.c.deleted_at.is_(None))  # a deleted garment's product photo is gone
             .order_by(t.c.created_at))
    if only_good:
        query = query.where(r.c.good.is_(True))
    with database.connect() as connection:
        rows = connection.execute(query).fetchall()
    database.dispose()
    pairs, views, records, garments_written = [], [], [], set()
    with Preprocessor() as preprocessor:
        for row in tqdm(rows, desc="exporting rated try-ons", unit="try-on", disable=not progress):
            name, cloth = f"{row.id}.jpg", f"{row.garment}_{row.view}.jpg"
            try:
                write_person(preprocessor, imaging.load_image(root / row.photo), person_paths(out, SPLIT, name),
                             View(row.view), name)
                if cloth not in garments_written:
                    write_garment(preprocessor, imaging.load_image(root / (row.front if row.view == "front"
                                                                           else row.back)),
                                  garment_paths(out, SPLIT, cloth), GarmentCategory(row.category))
                    garments_written.add(cloth)
            except (ValueError, OSError) as error:  # a photo the preprocessing cannot use is left out, and said
                logger.warning("try-on %s left out: %s", row.id, error)
                continue
            (out / SPLIT / RESULTS).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / row.result, out / SPLIT / RESULTS / f"{row.id}.png")
            pairs.append((name, cloth))
            views.append(f"{name} {row.view}\n")
            records.append({"name": name, "garment": cloth, "view": row.view, "rating": "good" if row.good else "bad",
                            "reason": row.reason or "", "engine": row.engine, "model_version": row.model_version})
    (out / SPLIT).mkdir(parents=True, exist_ok=True)
    write_pairs(out / PAIRS_FILE.format(split=SPLIT), pairs)
    (out / SPLIT / VIEWS_FILE).write_text("".join(views))
    with open(out / "feedback.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["name", "garment", "view", "rating", "reason", "engine",
                                                    "model_version"])
        writer.writeheader()
        writer.writerows(records)
    logger.info("exported %d rated try-ons (of %d shared and rated) to %s", len(records), len(rows), out)
    return len(records)
