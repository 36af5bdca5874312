"""Build a model by kind name, or from a user factory ``"package.module:function"``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from babysit._factories import import_factory_module
from babysit._names import unknown_name
from babysit.errors import ModelError
from babysit.models._cnn import SmallCNN
from babysit.models._init import initialize
from babysit.models._mlp import MLP, LinearClassifier
from babysit.models._resnet import ResNet
from babysit.models._transformer import TransformerLM

KINDS = ("linear", "mlp", "cnn", "resnet", "transformer")
SEQUENCE_KINDS = ("transformer",)  # score every position: (N, T, num_classes)
# what each kind takes beyond the common settings (Python keywords, or [model.args] in a config)
KIND_SETTINGS: dict[str, tuple[str, ...]] = {
    "resnet": ("width", "depth", "stages", "norm", "skip"),
    "transformer": ("n_layer", "d_model", "n_head", "scale_attention", "prenorm", "causal", "mlp_ratio",
                    "head_init_std"),
}


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
        kind: ``linear``, ``mlp``, ``cnn``, ``resnet``, ``transformer``, or ``"package.module:function"``
            (called with ``input_shape=, num_classes=`` and ``factory_kwargs``; must return an ``nn.Module``).
            ``resnet`` and ``transformer`` take their own settings as ``factory_kwargs`` (see
            :func:`build_resnet`, :func:`build_transformer`).
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

    Example:
        >>> build("transformer", input_shape=(16,), num_classes=50, n_layer=1, d_model=32)(
        ...     __import__("torch").zeros(2, 16, dtype=__import__("torch").long)).shape
        torch.Size([2, 16, 50])
    """
    if seed is not None:
        torch.manual_seed(seed)
    if ":" in kind:
        model = _from_factory(kind, input_shape=tuple(input_shape), num_classes=num_classes, **factory_kwargs)
    elif kind in KIND_SETTINGS:
        _check_kind_settings(kind, factory_kwargs, hidden=hidden, batch_norm=batch_norm, channels=channels,
                             activation=activation)
        if kind == "resnet":
            model = build_resnet(input_shape, num_classes, activation=activation, dropout=dropout, **factory_kwargs)
            initialize(model, init, std=init_std, bias=bias_init)
        else:
            model = build_transformer(input_shape, num_classes, dropout=dropout, init=init, init_std=init_std,
                                      bias_init=bias_init, **factory_kwargs)
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


def build_resnet(input_shape: Sequence[int], num_classes: int, *, width: int = 16, depth: int = 1,
                 stages: int = 3, norm: bool = True, skip: bool = True, activation: str = "relu",
                 dropout: float = 0.0) -> ResNet:
    """A ResNet for images ``(C, H, W)`` (see :class:`~babysit.models._resnet.ResNet`), before initialisation.

    Settings a fault zoo varies: ``width`` (channels of the first stage, doubled per stage; 16), ``depth``
    (basic blocks per stage; 1), ``stages`` (3), ``norm`` (batch norm after every conv; True), ``skip`` (the
    skip connections; True), ``activation`` (relu), ``dropout`` (before the last layer; 0).
    """
    return ResNet(input_shape, num_classes, width=width, depth=depth, stages=stages, norm=norm, skip=skip,
                  activation_name=activation, dropout=dropout)


def build_transformer(input_shape: Sequence[int], num_classes: int, *, n_layer: int = 2, d_model: int = 64,
                      n_head: int = 4, dropout: float = 0.0, scale_attention: bool = True, prenorm: bool = True,
                      causal: bool = True, mlp_ratio: int = 4, head_init_std: float | None = 0.02,
                      init: str = "he", init_std: float = 0.01, bias_init: float = 0.0) -> TransformerLM:
    """A causal transformer language model: ``input_shape=(T,)`` token ids to scores ``(N, T, num_classes)``.

    ``num_classes`` is the vocabulary size V; the softmax loss at initialisation is then ``ln V``.

    Settings a fault zoo varies: ``n_layer`` (2), ``d_model`` (64), ``n_head`` (4), ``dropout`` (0),
    ``scale_attention`` (divide by sqrt(d_head); True), ``prenorm`` (True; False is post-norm), ``causal``
    (mask future positions; True), ``mlp_ratio`` (4), ``head_init_std`` (the output layer starts at this std
    so the first scores are diffuse, lecture S1; None leaves it to ``init`` like every other linear layer).
    Linear layers get ``init`` (He by default), embeddings N(0, 0.02), layer norms 1 and 0.
    """
    if len(input_shape) != 1:
        raise ModelError(f"transformer needs token sequences shaped (T,), got input_shape={tuple(input_shape)}. "
                         "Use data source 'pysource' or token-id arrays of shape (N, T).")
    model = TransformerLM(int(input_shape[0]), num_classes, n_layer=n_layer, d_model=d_model, n_head=n_head,
                          dropout=dropout, scale_attention=scale_attention, prenorm=prenorm, causal=causal,
                          mlp_ratio=mlp_ratio)
    initialize(model, init, std=init_std, bias=bias_init)
    if head_init_std is not None:
        with torch.no_grad():
            model.head.weight.normal_(0.0, float(head_init_std))
    return model


def _check_kind_settings(kind: str, settings: dict[str, Any], **common: Any) -> None:
    """The common settings a kind does not use must keep their defaults; its own must be known names."""
    unknown = sorted(set(settings) - set(KIND_SETTINGS[kind]))
    if unknown:
        raise ModelError(f"unknown model settings {unknown} for kind {kind!r}; it takes "
                         f"{', '.join(KIND_SETTINGS[kind])} (in a config: [model.args]), plus dropout, init, seed.")
    defaults = {"hidden": None, "batch_norm": False, "channels": (16, 32), "activation": "relu"}
    if kind == "resnet":
        defaults.pop("activation")
    for key, default in defaults.items():
        value = common[key]
        if (tuple(value) if isinstance(value, (list, tuple)) else value) != default:
            own = ", ".join(KIND_SETTINGS[kind])
            raise ModelError(f"model kind {kind!r} does not use {key}={value!r}; its shape is set by {own} "
                             "(Python keywords of models.build, or [model.args] in a config).")


def _from_factory(target: str, **kwargs: Any) -> nn.Module:
    """Call the factory ``"package.module:function"`` with ``kwargs`` (``input_shape``, ``num_classes`` and the
    config's ``[model.args]``); its module is looked for on sys.path, in the current folder and in the folder of
    the config that names it (see :mod:`babysit._factories`)."""
    module_name, _, attr = target.partition(":")
    try:
        module = import_factory_module(module_name)
    except ImportError as exc:
        raise ModelError(
            f"cannot import module {module_name!r} of model factory {target!r}: {exc}. It is looked for on sys.path, "
            "in the current folder and in the config's folder; check the name, or add its folder to PYTHONPATH."
        ) from exc
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
            dtype = torch.long if kind in SEQUENCE_KINDS else torch.float32
            out = model(torch.zeros(2, *input_shape, dtype=dtype))
    except RuntimeError as exc:
        raise ModelError(
            f"model {kind!r} cannot take inputs shaped (N, {', '.join(map(str, input_shape))}): {exc}"
        ) from exc
    finally:
        model.train(was_training)
    expected = (2, *input_shape, num_classes) if kind in SEQUENCE_KINDS else (2, num_classes)
    if tuple(out.shape) != expected:
        raise ModelError(
            f"model {kind!r} returns scores shaped {tuple(out.shape)} for 2 examples; expected {expected} "
            f"for {num_classes} classes."
        )
