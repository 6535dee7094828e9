"""Networks (``nn.Module`` only), one family per file, built by name through a registry.

Every real configuration has a tiny ``test_*`` sibling so tests and benchmarks build real code in milliseconds.
"""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str):
    def decorator(factory: Callable[..., nn.Module]):
        _MODELS[name] = factory
        return factory
    return decorator


def create_model(name: str, **options) -> nn.Module:
    """Build the model registered as ``name``."""
    _load_builtin()
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(sorted(_MODELS))}")
    return _MODELS[name](**options)


def available_models() -> list[str]:
    _load_builtin()
    return sorted(_MODELS)


def _load_builtin() -> None:
    from fitroom.models import cpvton, hrviton, schp  # noqa: F401
