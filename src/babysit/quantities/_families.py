"""The families of quantities, one per source the Monitor hands over, and the records it hands.

A quantity subclasses the family of what it is computed from, and the family fixes what ``measure`` gets:

============================  ==============  =================================================================
family                        ``needs``       ``measure(source)`` gets
============================  ==============  =================================================================
:class:`LayerQuantity`        activations     a :class:`LayerOutput` per watched layer call (forward hook)
:class:`InputQuantity`        inputs          the model's input tensor (first ``sample_size`` examples)
:class:`OutputQuantity`       outputs         the model's output tensor (first ``sample_size`` examples)
:class:`GradientQuantity`     gradients       :class:`Gradients`: every ``.grad`` just after ``optimizer.step()``
:class:`UpdateQuantity`       update          :class:`Update`: the weights just before and just after the step
:class:`EvaluationQuantity`   evaluation      :class:`Passes`: two outputs of the same input (once an epoch)
============================  ==============  =================================================================

The Monitor arms only what the chosen quantities need: the pre-activation is kept only for a layer some
quantity ``wants_pre``; the gradient of the watched bias' layer output only when a gradient quantity
``wants_incoming``; the weight copy before ``optimizer.step()`` only when an update quantity is recorded.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import torch
from torch import Tensor

from babysit.quantities._base import Measurement, Quantity

if TYPE_CHECKING:
    from babysit.monitors._layers import Watched


# --- activations ----------------------------------------------------------------------------------------------
class LayerOutput(NamedTuple):
    """One call of a watched layer on a sampled step (made for every layer call: a tuple, cheap to make).

    Attributes:
        target: the name its keys carry (the layer's name; ``"act#2"`` for the second call of ``act``).
        layer: the watched record: ``module``, ``kind`` (weighted, activation, norm, embedding, softmax,
            other), ``activation`` (relu, tanh, ...), ``dead`` and ``saturating`` flags.
        output: its output, first ``sample_size`` examples, detached.
        pre: its input likewise, only when a quantity's :meth:`LayerQuantity.wants_pre` asked for it.
    """

    target: str
    layer: Watched
    output: Tensor
    pre: Tensor | None = None


class LayerQuantity(Quantity):
    """Measured on the output of every watched layer it :meth:`applies` to; keys ``.../{target}/...``."""

    needs: ClassVar[str] = "activations"
    scope: ClassVar[str] = "layer"

    def applies(self, layer: Watched) -> bool:
        """Whether this layer is measured at all (decided once, when the Monitor is built)."""
        return True

    def wants_pre(self, layer: Watched) -> bool:
        """Whether ``measure`` needs the layer's input too (kept only when some quantity asks)."""
        return False

    @abstractmethod
    def measure(self, source: LayerOutput) -> Measurement | None: ...


# --- model input and output -----------------------------------------------------------------------------------
class InputQuantity(Quantity):
    """Measured on the model's (floating-point) input; one series per stat for the whole model."""

    needs: ClassVar[str] = "inputs"
    scope: ClassVar[str] = "model"

    @abstractmethod
    def measure(self, source: Tensor) -> Measurement | None: ...


class OutputQuantity(Quantity):
    """Measured on the model's output (its first tensor); one series per stat for the whole model."""

    needs: ClassVar[str] = "outputs"
    scope: ClassVar[str] = "model"

    @abstractmethod
    def measure(self, source: Tensor) -> Measurement | None: ...


# --- gradients ------------------------------------------------------------------------------------------------
class Gradients:
    """The gradients of the trainable parameters, read just after ``optimizer.step()``.

    ``norms`` is one fused ``torch._foreach_norm`` over all of them, computed on first use and shared by every
    quantity that asks. ``carry`` is ``(.grad of the watched bias, what this step's backward delivered to it)``
    when a quantity ``wants_incoming`` and the step saw that bias; else None.
    """

    __slots__ = ("_norms", "carry", "grads", "names")

    def __init__(self, names: list[str], grads: list[Tensor], carry: tuple[Tensor, Tensor] | None = None) -> None:
        self.names, self.grads, self.carry = names, grads, carry
        self._norms: list[Tensor] | None = None

    @property
    def norms(self) -> list[Tensor]:
        if self._norms is None:
            self._norms = list(torch._foreach_norm(self.grads)) if self.grads else []
        return self._norms


class GradientQuantity(Quantity):
    """Measured on the gradients after the optimizer step; per parameter unless it says ``scope = "model"``."""

    needs: ClassVar[str] = "gradients"
    scope: ClassVar[str] = "parameter"
    wants_incoming: ClassVar[bool] = False  # needs Gradients.carry (a hook on the watched layer's output)

    @abstractmethod
    def measure(self, source: Gradients) -> Measurement | None: ...


# --- the update the optimizer took ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Update:
    """The trainable parameters just before and just after ``optimizer.step()`` (``before`` is a copy)."""

    names: list[str]
    before: list[Tensor]
    after: list[Tensor]


class UpdateQuantity(Quantity):
    """Measured around the optimizer step (recording one costs a copy of the weights before each sampled step)."""

    needs: ClassVar[str] = "update"
    scope: ClassVar[str] = "parameter"

    @abstractmethod
    def measure(self, source: Update) -> Measurement | None: ...


# --- evaluation -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Passes:
    """Two outputs of the same examples: ``mode`` "eval" (two ``model.eval()`` passes, epochs 1, 4, 16, ...)
    or "train" (an evaluation pass of your own loop made in training mode with dropout active, run twice)."""

    first: Any
    second: Any
    mode: str


class EvaluationQuantity(Quantity):
    """Measured on two passes over the same examples; one series per stat for the whole model."""

    needs: ClassVar[str] = "evaluation"
    scope: ClassVar[str] = "model"

    @abstractmethod
    def measure(self, source: Passes) -> Measurement | None: ...


def first_tensor(value: object) -> Tensor | None:
    """The tensor of a module output: the output itself, the first of a tuple, or a mapping's ``logits`` (a Hugging
    Face ``ModelOutput`` is a dict; its ``loss`` is not the model's output); else None."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], Tensor):
        return value[0]
    if isinstance(value, Mapping):
        logits = value.get("logits")
        if isinstance(logits, Tensor):
            return logits
        return next((v for k, v in value.items() if k != "loss" and isinstance(v, Tensor)), None)
    return None


FAMILIES: tuple[type[Quantity], ...] = (
    LayerQuantity, InputQuantity, OutputQuantity, GradientQuantity, UpdateQuantity, EvaluationQuantity,
)


# --- one vector for many parameters ---------------------------------------------------------------------------
class PerName(NamedTuple):
    """The context of a per-parameter measurement: whose values the vector holds, and per-name contexts."""

    names: Sequence[str]
    items: Sequence[Any] | None = None


class PerParameter:
    """Mixin: one vector holds ``k`` blocks of one value per parameter (``[a_0..a_n-1, b_0..b_n-1, ...]``), so
    all parameters cost one kernel per block; the host splits it and :meth:`reduce` sees one parameter's
    ``[a_i, b_i, ...]`` (and ``items[i]``) at a time. ``measure`` returns ``context=PerName(names, items)``."""

    def readings(self, target: str | None, scalars: Sequence[float], vector: Sequence[float],
                 context: PerName) -> Iterator[tuple[str, Any]]:
        names, items = context
        n = len(names)
        for i, name in enumerate(names):
            values = vector[i::n]
            for stat, value in self.reduce(scalars, values, None if items is None else items[i]).items():  # type: ignore[attr-defined]
                yield self.key(stat, name), value  # type: ignore[attr-defined]
