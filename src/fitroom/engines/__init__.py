"""Try-on engines: ``engine(inputs: TryOnInputs) -> TryOnResult``, built by name.

An engine composes preprocessing products, models and post-processing; it never defines a network layer.
"""

from __future__ import annotations

import inspect
import logging
from typing import Callable, Protocol

from fitroom.errors import ConfigurationError
from fitroom.inputs import TryOnInputs, TryOnResult
from fitroom.labels import GarmentCategory
from fitroom.registry import Registry

logger = logging.getLogger(__name__)


class Engine(Protocol):
    name: str
    #: the garment categories the engine dresses (absent: all of them)
    categories: frozenset[GarmentCategory]

    def __call__(self, inputs: TryOnInputs) -> TryOnResult: ...


#: every try-on engine by name (the built-in ones: ``warp``, ``hrviton``, ``cpvton``)
ENGINES: Registry[Callable[..., Engine]] = Registry(
    "engines", modules={"warp": "fitroom.engines.warp", "hrviton": "fitroom.engines.hrviton",
                        "cpvton": "fitroom.engines.cpvton", "diffusion": "fitroom.engines.diffusion"})


def register_engine(name: str):
    """Class decorator: make an engine available to :func:`create_engine` under ``name`` (its ``name``)."""
    def decorator(factory):
        factory.name = name
        return ENGINES.register(name)(factory)
    return decorator


def available_engines() -> list[str]:
    return ENGINES.names()


def engine_categories(name: str, checkpoint: str | None = None) -> frozenset[GarmentCategory]:
    """The garment categories the engine registered as ``name`` dresses, without building it: those its
    ``checkpoint`` was trained on when the engine can read them (``checkpoint_categories``), else its class's
    ``categories`` (all when it does not say)."""
    engine = ENGINES.get(name)
    reader = getattr(engine, "checkpoint_categories", None)
    if checkpoint and reader is not None:
        trained = reader(checkpoint)
        if trained is not None:
            return frozenset(trained)
    return frozenset(getattr(engine, "categories", frozenset(GarmentCategory)))


def create_engine(name: str = "warp", checkpoint: str | None = None, device: str | None = None,
                  progress: bool | None = None, **options) -> Engine:
    """Build the engine registered as ``name`` with its options.

    Args:
        checkpoint: the model folder of a learned engine (an engine without weights refuses one).
        device: ``auto``, ``cpu``, ``cuda[:N]`` or ``mps`` (:func:`fitroom.devices.resolve_device`), for an engine
            that runs networks; one that does not runs where it always does (the CPU).
        progress: whether an engine with long work (the diffusion engine's steps) shows a progress bar.
    """
    factory = ENGINES.get(name)
    accepted = inspect.signature(factory).parameters
    if checkpoint:
        if "checkpoint" not in accepted:
            learned = [e for e, f in ENGINES.items() if "checkpoint" in inspect.signature(f).parameters]
            raise ConfigurationError(f"the {name} engine uses no weights, so it takes no checkpoint; the learned "
                                     f"engines are {', '.join(learned)}")
        options["checkpoint"] = checkpoint
    if "device" in accepted:
        from fitroom.devices import resolve_device

        options["device"] = resolve_device(device)
    elif device not in (None, "auto", "cpu"):
        logger.warning("the %s engine runs on the CPU; --device %s applies to the learned engines", name, device)
    if progress is not None and "progress" in accepted:
        options["progress"] = progress
    refused = sorted(k for k in options if k not in accepted)
    if refused:
        raise ConfigurationError(f"the {name} engine takes no {', '.join(refused)}")
    return factory(**options)
