"""Build a model by kind name, or from a user factory ``"package.module:function"``."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from babysit._names import unknown_name
from babysit.errors import ModelError
from babysit.models._cnn import SmallCNN
from babysit.models._init import initialize
from babysit.models._mlp import MLP, LinearClassifier

KINDS = ("linear", "mlp", "cnn")


def build(
    kind: str,
    *,
    input_shape: Sequence[int],
    num_classes: int,
    hidden: Sequence[int] | int | None = None,
    activation: str = "relu",
    dropout: float = 0.0,
    batch_norm: bool = False,
    channels: Sequence[int] = (16, 32),
    init: str = "he",
    init_std: float = 0.01,
    bias_init: float = 0.0,
    seed: int | None = None,
    **factory_kwargs: Any,
) -> nn.Module:
    """Build a classifier mapping ``(N, *input_shape)`` to scores ``(N, num_classes)``.

    Args:
        kind: ``linear``, ``mlp``, ``cnn``, or ``"package.module:function"`` (called with
            ``input_shape=, num_classes=`` and ``factory_kwargs``; must return an ``nn.Module``).
        input_shape: shape of one example, e.g. ``(1, 8, 8)``.
        num_classes: number of scores per example.
        hidden: hidden sizes of an mlp (default ``[100]``) or the width of a cnn's dense layer (default 64).
        activation: ``relu``, ``leaky_relu``, ``tanh`` or ``sigmoid``.
        dropout: dropout probability after each hidden activation.
        batch_norm: insert batch normalisation before each activation.
        channels: conv channels of a cnn, one block each.
        init: ``he``, ``xavier``, ``normal`` (with ``init_std``) or ``torch``.
        init_std: std of the ``normal`` init.
        bias_init: the constant biases start at.
        seed: seeds the initialisation when given.
    """
    if seed is not None:
        torch.manual_seed(seed)
    if ":" in kind:
        model = _from_factory(kind, input_shape=tuple(input_shape), num_classes=num_classes, **factory_kwargs)
    else:
        if factory_kwargs:
            raise ModelError(f"unknown model settings {sorted(factory_kwargs)} for kind {kind!r}.")
        if kind == "linear":
            model = LinearClassifier(input_shape, num_classes)
        elif kind == "mlp":
            sizes = [100] if hidden is None else ([hidden] if isinstance(hidden, int) else list(hidden))
            model = MLP(
                input_shape, num_classes, sizes, activation_name=activation, dropout=dropout, batch_norm=batch_norm
            )
        elif kind == "cnn":
            width = 64 if hidden is None else int(hidden if isinstance(hidden, int) else hidden[0])
            model = SmallCNN(
                input_shape,
                num_classes,
                channels,
                width,
                activation_name=activation,
                dropout=dropout,
                batch_norm=batch_norm,
            )
        else:
            raise ModelError(unknown_name("model kind", kind, KINDS) + " Or give 'package.module:function'.")
        initialize(model, init, std=init_std, bias=bias_init)
    _check_output(model, tuple(input_shape), num_classes, kind)
    return model


def _from_factory(target: str, **kwargs: Any) -> nn.Module:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelError(f"cannot import module {module_name!r} of model factory {target!r}: {exc}") from exc
    factory: Callable[..., Any] | None = getattr(module, attr, None)
    if not callable(factory):
        raise ModelError(f"module {module_name!r} has no callable {attr!r} (model factory {target!r}).")
    model = factory(**kwargs)
    if not isinstance(model, nn.Module):
        raise ModelError(f"model factory {target!r} returned {type(model).__name__}, expected a torch.nn.Module.")
    return model


def _check_output(model: nn.Module, input_shape: tuple[int, ...], num_classes: int, kind: str) -> None:
    """Fail early, with shapes, when the model's scores do not fit the data."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, *input_shape))
    except RuntimeError as exc:
        raise ModelError(
            f"model {kind!r} cannot take inputs shaped (N, {', '.join(map(str, input_shape))}): {exc}"
        ) from exc
    finally:
        model.train(was_training)
    if tuple(out.shape) != (2, num_classes):
        raise ModelError(
            f"model {kind!r} returns scores shaped {tuple(out.shape)} for 2 examples; expected (2, {num_classes}) "
            f"for {num_classes} classes."
        )
