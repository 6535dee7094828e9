"""Files written whole or not at all."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def written_at_once(target: str | Path, keep_suffix: bool = False) -> Iterator[Path]:
    """A temporary path beside ``target`` to write to; when the block ends it is moved over ``target`` in one
    step, and when the block raises it is deleted: a reader (or a resumed run) sees the old file or the new one,
    never half of one, and several processes writing the same target never mix their bytes.

    Args:
        keep_suffix: end the temporary name with ``target``'s suffix (for writers that choose the format by it).
    """
    target = Path(target)
    suffix = target.suffix if keep_suffix else ""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial{suffix}")
    try:
        yield temporary
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
