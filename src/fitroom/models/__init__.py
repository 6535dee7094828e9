"""Networks (``nn.Module`` only), one family per file, built by name through a registry.

Every real configuration has a tiny ``test_*`` sibling so tests and benchmarks build real code in milliseconds.
"""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

from fitroom.registry import Registry

#: every network by name; each real configuration has a tiny ``test_*`` sibling
MODELS: Registry[Callable[..., nn.Module]] = Registry(
    "models", builtin=("fitroom.models.cpvton", "fitroom.models.hrviton", "fitroom.models.leffa",
                       "fitroom.models.schp"))


def register_model(name: str):
    """Decorator: make a network factory available to :func:`create_model` under ``name``."""
    return MODELS.register(name)


def create_model(name: str, **options) -> nn.Module:
    """Build the model registered as ``name``."""
    return MODELS.create(name, **options)


def available_models() -> list[str]:
    return MODELS.names()
