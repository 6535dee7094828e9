"""One registry helper for everything fitroom builds by name: engines, models, human parsers, dense-map backends,
training tasks and checkpoint converters.

A registry maps names to factories. The built-in ones register themselves when their module is imported (each
registry names those modules and imports them the first time it is asked); other packages add theirs through the
entry-point group ``fitroom.<kind>`` (e.g. ``[project.entry-points."fitroom.engines"] mine = "pkg.mod:Engine"``),
and code in the same process with :meth:`Registry.register`. Adding a plug-in never edits a file of fitroom.

Example::

    from fitroom.engines import ENGINES

    @ENGINES.register("mine")
    class MyEngine: ...
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from fitroom.errors import InputError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Registry(Generic[T]):
    """Names -> factories of one kind of plug-in.

    Args:
        kind: what is registered, in words and as the entry-point group suffix (``"engines"`` ->
            ``fitroom.engines``).
        builtin: the modules whose import registers the built-in entries (imported on first use, so that an
            unused heavy dependency is never loaded).
        noun: one entry in words, for messages (default: ``kind`` without its plural ``s``).
        modules: built-in names -> the module that registers each: :meth:`get` of such a name imports only that
            module (the ``warp`` engine is then built without importing torch, which the learned engines' modules
            need); they join ``builtin``.
    """

    def __init__(self, kind: str, builtin: tuple[str, ...] = (), noun: str = "",
                 modules: dict[str, str] | None = None) -> None:
        self.kind = kind
        self.noun = noun or kind.removesuffix("s")
        self.modules = dict(modules or {})
        self.builtin = tuple(dict.fromkeys(builtin + tuple(self.modules.values())))
        self._entries: dict[str, T] = {}
        self._loaded = False

    def register(self, name: str, *, replace: bool = False) -> Callable[[T], T]:
        """Decorator: make ``factory`` available under ``name`` (a second entry of the same name is refused
        unless ``replace``)."""
        def decorator(factory: T) -> T:
            if name in self._entries and self._entries[name] is not factory and not replace:
                raise ValueError(f"{self.kind}: {name!r} is registered already ({self._entries[name]!r})")
            self._entries[name] = factory
            return factory
        return decorator

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests add plug-ins and take them away again)."""
        self._entries.pop(name, None)

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self.builtin:
            importlib.import_module(module)
        for point in entry_points(group=f"fitroom.{self.kind}"):
            if point.name in self._entries:
                continue
            try:
                self._entries[point.name] = point.load()
            except Exception as error:  # a broken plug-in must not take the built-in ones down with it
                logger.warning("the %s plug-in %r (%s) cannot be loaded: %s", self.kind, point.name, point.value,
                               error)

    def get(self, name: str) -> T:
        """The factory registered as ``name`` (an :class:`~fitroom.errors.InputError` naming the known ones
        otherwise)."""
        if name not in self._entries and name in self.modules and not self._loaded:
            importlib.import_module(self.modules[name])
        if name not in self._entries:
            self._load()
        if name not in self._entries:
            raise InputError(f"unknown {self.noun} {name!r}; available: {', '.join(self.names())}")
        return self._entries[name]

    def create(self, name: str, **options):
        """Call the factory registered as ``name`` with ``options``."""
        return self.get(name)(**options)  # type: ignore[operator]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        self._load()
        return iter(sorted(self._entries.items()))

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"
