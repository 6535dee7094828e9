"""``fitroom feedback export``: rated try-ons whose shoppers agreed to share them, as a VITON-HD layout dataset for
fine-tuning.

A try-on rated good is a picture of the shopper wearing the garment, as the shopper accepted it: each becomes a
*paired* training sample whose person image is the service's result, with every per-person modality computed from
it (pose, parse, dense map, agnostic person), and whose garment (``cloth/`` under the sample's own name, as VITON-HD
pairs them) is the product photo of the view tried on. ``fitroom train STAGE --set data=OUT`` fine-tunes on them.

The ratings filter: ``train_pairs.txt`` lists the try-ons rated good; the ones rated bad are exported beside them
(``bad_pairs.txt``) for inspection, and never trained on, unless ``only_good`` leaves them out altogether. Every
exported try-on has a row of ``feedback.csv`` (rating, reason, view, engine, model version) and the shopper's
original photo in ``photo/``.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import sqlalchemy as sa
from tqdm import tqdm

from fitroom.data.layout import PAIRS_FILE, VIEWS_FILE, write_pairs
from fitroom.data.prepare import garment_paths, person_paths, write_garment, write_person
from fitroom.errors import InputError
from fitroom.labels import GarmentCategory, View
from fitroom.service import storage
from fitroom.service.objects import open_store
from fitroom.service.settings import Settings

logger = logging.getLogger(__name__)

SPLIT = "train"
ORIGINALS = "photo"  # the shoppers' own photos, for reference
BAD_PAIRS = "bad_pairs.txt"  # try-ons rated bad: exported for inspection, not trained on


def export_feedback(settings: Settings, out: str | Path, only_good: bool = False, progress: bool = True) -> int:
    """Write the dataset; returns the number of samples."""
    from fitroom.preprocess.pipeline import Preprocessor

    out, root = Path(out), Path(settings.data_dir)
    if not settings.database_url and not (root / "fitroom.db").is_file():
        raise InputError(f"{root.resolve()} is not a fitroom data folder (it has no fitroom.db): give the folder "
                         f"`fitroom serve` writes with --data-dir (or FITROOM_DATA_DIR / FITROOM_DATABASE_URL)")
    database, _ = storage.open_database(settings.database)
    store = open_store(settings.storage, root)
    t, r, g, p = storage.tryons, storage.ratings, storage.garments, storage.garment_photos
    query = (sa.select(t.c.id, t.c.view, t.c.photo, t.c.result, t.c.engine, t.c.model_version, r.c.good, r.c.reason,
                       g.c.id.label("garment"), g.c.category, p.c.photo.label("product"))
             .select_from(t.join(r, r.c.tryon_id == t.c.id).join(g, g.c.id == t.c.garment_id)
                          .join(p, (p.c.garment_id == t.c.garment_id) & (p.c.view == t.c.view)))
             .where(t.c.share.is_(True) & t.c.photo.is_not(None) & t.c.result.is_not(None)
                    & g.c.deleted_at.is_(None))  # a deleted garment's product photo is gone
             .order_by(t.c.created_at))
    if only_good:
        query = query.where(r.c.good.is_(True))
    with database.connect() as connection:
        rows = connection.execute(query).fetchall()
    database.dispose()
    good, bad, views, records = [], [], [], []
    with Preprocessor() as preprocessor:
        for row in tqdm(rows, desc="exporting rated try-ons", unit="try-on", disable=not progress):
            name = f"{row.id}.jpg"
            targets = person_paths(out, SPLIT, name)
            try:
                result = store.get_image(row.result)
                view = write_person(preprocessor, result, targets, View(row.view), name)
                write_garment(preprocessor, store.get_image(row.product),
                              garment_paths(out, SPLIT, name), GarmentCategory(row.category))
            except (ValueError, OSError) as error:  # a picture the preprocessing cannot use is left out, and said
                logger.warning("try-on %s left out: %s", row.id, error)
                for path in targets.values():
                    path.unlink(missing_ok=True)
                continue
            (out / SPLIT / ORIGINALS).mkdir(parents=True, exist_ok=True)
            (out / SPLIT / ORIGINALS / f"{row.id}{Path(row.photo).suffix}").write_bytes(store.get(row.photo))
            (good if row.good else bad).append((name, name))
            views.append(f"{name} {view.value}\n")
            records.append({"name": name, "garment": row.garment, "view": row.view,
                            "rating": "good" if row.good else "bad", "reason": row.reason or "", "engine": row.engine,
                            "model_version": row.model_version})
    (out / SPLIT).mkdir(parents=True, exist_ok=True)
    write_pairs(out / PAIRS_FILE.format(split=SPLIT), good)
    write_pairs(out / BAD_PAIRS, bad)
    (out / SPLIT / VIEWS_FILE).write_text("".join(views))
    with open(out / "feedback.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["name", "garment", "view", "rating", "reason", "engine",
                                                    "model_version"])
        writer.writeheader()
        writer.writerows(records)
    if not good:
        logger.warning("no try-on rated good was exported, so %s lists nothing to train on",
                       out / PAIRS_FILE.format(split=SPLIT))
    logger.info("exported %d rated try-ons (%d good: train_pairs.txt, %d bad: %s; of %d shared and rated) to %s",
                len(records), len(good), len(bad), BAD_PAIRS, len(rows), out)
    return len(records)
