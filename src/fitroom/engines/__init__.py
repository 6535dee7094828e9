"""Try-on engines: ``engine(inputs: TryOnInputs) -> TryOnResult``, built by name.

An engine composes preprocessing products, models and post-processing; it never defines a network layer.
"""

from __future__ import annotations

from typing import Callable, Protocol

from fitroom.inputs import TryOnInputs, TryOnResult


class Engine(Protocol):
    name: str

    def __call__(self, inputs: TryOnInputs) -> TryOnResult: ...


_ENGINES: dict[str, Callable[..., Engine]] = {}


def register_engine(name: str):
    """Class decorator: make an engine available to :func:`create_engine` under ``name``."""
    def decorator(factory):
        _ENGINES[name] = factory
        factory.name = name
        return factory
    return decorator


def available_engines() -> list[str]:
    _load_builtin()
    return sorted(_ENGINES)


def create_engine(name: str = "warp", **options) -> Engine:
    """Build the engine registered as ``name`` with its options."""
    _load_builtin()
    if name not in _ENGINES:
        raise ValueError(f"unknown engine {name!r}; available: {', '.join(sorted(_ENGINES))}")
    return _ENGINES[name](**options)


def _load_builtin() -> None:
    from fitroom.engines import cpvton, hrviton, warp  # noqa: F401  (register themselves)
