"""Work split across machines: ``--shard I/N`` takes the items whose position is I modulo N, and a merge joins
the shards' files (``NAME.I-of-N.EXT``) once every one of them is there."""

from __future__ import annotations

import re
from pathlib import Path

from fitroom.errors import InputError


def check_shard(shard: tuple[int, int]) -> tuple[int, int]:
    """``shard`` ``(I, N)`` as a tuple; InputError unless ``0 <= I < N``."""
    index, count = (int(v) for v in shard)
    if not 0 <= index < count:
        raise InputError(f"--shard {index}/{count}: give I/N with 0 <= I < N")
    return index, count


def finished_shards(folder: Path, pattern: str, what: str) -> list[Path]:
    """The files of ``folder`` matching ``pattern`` (named ``...I-of-N...``), sorted, when they are every shard of
    one run; InputError naming ``what`` is missing otherwise (none yet, another run's, or some still to come)."""
    files = sorted(Path(folder).glob(pattern))
    counts = set()
    for file in files:
        match = re.search(r"\d+-of-(\d+)", file.name)
        counts.add(int(match.group(1)) if match else 0)
    if not files:
        raise InputError(f"{folder} holds no {what} ({pattern}): run the shards first")
    if len(counts) != 1 or len(files) != next(iter(counts)):
        raise InputError(f"{folder} holds {len(files)} {what} of {sorted(counts)} shards: every shard must be done "
                         f"(and of one run) before the merge")
    return files
