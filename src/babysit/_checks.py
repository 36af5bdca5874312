"""Checks of the torch objects a caller hands over (the model, the optimizer), with messages that say what came in
and how to build the right thing; shared by ``fit`` and ``Monitor``."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from babysit.errors import ConfigError


def check_module(value: Any, who: str) -> None:
    """Raise a ConfigError unless ``value`` is an ``nn.Module`` instance; ``who`` begins the message (``fit``)."""
    if isinstance(value, nn.Module):
        return
    need = f"{who} needs the torch.nn.Module being trained"
    if isinstance(value, type) and issubclass(value, nn.Module):
        name = class_name(value)
        raise ConfigError(f"{need}, got the class {name}: build it first, e.g. {name}(...).")
    if callable(value) and not isinstance(value, type):
        name = getattr(value, "__name__", type(value).__name__)
        raise ConfigError(f"{need}, got the {type(value).__name__} {name!r}: a plain function has no parameters to "
                          "train; put the layers in an nn.Module (nn.Sequential(...), or a subclass with a forward "
                          "method) and pass that.")
    raise ConfigError(f"{need}, got {describe(value)}: pass the model itself, e.g. nn.Sequential(...).")


def check_optimizer(value: Any, who: str) -> None:
    """Raise a ConfigError unless ``value`` is a ``torch.optim.Optimizer`` or None."""
    if value is None or isinstance(value, torch.optim.Optimizer):
        return
    head = f"{who}'s optimizer must be a torch.optim.Optimizer (or None)"
    if isinstance(value, type) and issubclass(value, torch.optim.Optimizer):
        name = class_name(value)
        raise ConfigError(f"{head}, got the class {name}: build it first, e.g. {name}(model.parameters(), lr=...).")
    raise ConfigError(f"{head}, got {describe(value)}: build one, e.g. torch.optim.Adam(model.parameters(), "
                      "lr=1e-3), and pass it, or leave it out.")


def class_name(cls: type) -> str:
    """``nn.Linear`` for torch.nn's classes, ``torch.optim.Adam`` for torch's others, else the qualified name."""
    module = cls.__module__
    if module.startswith("torch.nn"):
        return f"nn.{cls.__name__}"
    if module.startswith("torch.optim"):
        return f"torch.optim.{cls.__name__}"
    return cls.__qualname__


def describe(value: Any) -> str:
    """``a str ('adam')``, ``the class Foo``: a short account of what came in."""
    if isinstance(value, type):
        return f"the class {class_name(value)}"
    text = repr(value)
    return f"a {type(value).__name__} ({text[:60] + '...' if len(text) > 60 else text})"
