"""One sampled step: hooks go on, the chosen quantities measure into a Sample on the device, hooks come off.

Between sampled steps nothing of this is attached to the model or the optimizer, so a plain step costs
nothing. Only the last training forward pass of a step counts (gradient accumulation runs several, an
L-BFGS closure may too); evaluation passes (no grad) are ignored. What each hook hands over is fixed by
the quantities' families (:mod:`babysit.quantities._families`), and what it keeps is only what a chosen
quantity asked for: a layer's input only for a layer some quantity ``wants_pre``, the bias' incoming
gradient only for a quantity that ``wants_incoming``, the weight copy only for an update quantity.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from babysit.monitors._layers import CONVS, Watched
from babysit.monitors._params import ParameterProbe
from babysit.monitors._probes import ProbeInput
from babysit.monitors._stats import Sample, first_tensor
from babysit.quantities import (
    EvaluationQuantity,
    GradientQuantity,
    InputQuantity,
    LayerOutput,
    LayerQuantity,
    OutputQuantity,
    Quantity,
    UpdateQuantity,
)


@dataclass
class Plan:
    """The chosen quantities by source, each split into those of every sampled step and those of the
    histogram steps only (``histogram_steps_only``)."""

    layer: tuple[list[LayerQuantity], list[LayerQuantity]] = field(default_factory=lambda: ([], []))
    inputs: tuple[list[InputQuantity], list[InputQuantity]] = field(default_factory=lambda: ([], []))
    outputs: tuple[list[OutputQuantity], list[OutputQuantity]] = field(default_factory=lambda: ([], []))
    gradients: tuple[list[GradientQuantity], list[GradientQuantity]] = field(default_factory=lambda: ([], []))
    updates: tuple[list[UpdateQuantity], list[UpdateQuantity]] = field(default_factory=lambda: ([], []))
    evaluation: list[EvaluationQuantity] = field(default_factory=list)

    @classmethod
    def of(cls, quantities: Sequence[Quantity]) -> Plan:
        plan = cls()
        groups = ((LayerQuantity, plan.layer), (InputQuantity, plan.inputs), (OutputQuantity, plan.outputs),
                  (GradientQuantity, plan.gradients), (UpdateQuantity, plan.updates))
        for q in quantities:
            if isinstance(q, EvaluationQuantity):
                plan.evaluation.append(q)
                continue
            for family, (every, occasional) in groups:
                if isinstance(q, family):
                    (occasional if q.histogram_steps_only else every).append(q)  # type: ignore[arg-type]
        return plan


def _now(pair: tuple[list[Any], list[Any]], histogram_step: bool, regular: bool = True) -> list[Any]:
    """The quantities of a step: those of every sampled step (unless it is only a histogram step, the run's
    last off the sampling grid) and, on a histogram step, the occasional ones."""
    every = pair[0] if regular else []
    return every + pair[1] if histogram_step and pair[1] else every


@dataclass
class _LayerPlan:
    """The layer quantities that apply to one watched layer, and whether one of them wants its input."""

    every: list[LayerQuantity]
    occasional: list[LayerQuantity]
    wants_pre: bool


class Sampler:
    """Arms the hooks of one sampled step and collects what the quantities measure."""

    def __init__(self, model: nn.Module, layers: list[Watched], params: list[tuple[str, nn.Parameter]], *,
                 sample_size: int, quantities: Sequence[Quantity]) -> None:
        self.model, self.layers, self.params, self.k = model, layers, params, sample_size
        self.plan = Plan.of(quantities)
        self._per_layer = [self._layer_plan(layer) for layer in layers]
        self._layer_hooks = [functools.partial(self._on_layer, layer, per)  # made once, hooked on each sampled step
                             for layer, per in zip(layers, self._per_layer)]
        self.watched: tuple[Watched, nn.Parameter, int] | None = None  # (layer, its bias, channel dim): zero_grad check
        self.order: list[tuple[str, Watched]] = []  # forward order of the watched calls, from the first sample
        self._ordered: set[str] = set()
        self.probe_input: ProbeInput | None = None  # a few examples of the last sampled batch
        self.num_outputs: int | None = None
        self.armed = False
        self._handles: list[Any] = []
        self._probe: ParameterProbe | None = None
        self._forward, self._params = Sample(), Sample()
        self._calls: dict[str, int] = {}
        self._histogram_step = False
        self._regular = True
        self._inputs: list[InputQuantity] = []
        self._outputs: list[OutputQuantity] = []

    def _layer_plan(self, layer: Watched) -> _LayerPlan:
        every, occasional = ([q for q in group if q.applies(layer)] for group in self.plan.layer)
        return _LayerPlan(every, occasional, any(q.wants_pre(layer) for q in every + occasional))

    def watch(self, optimized: set[int]) -> None:
        """Choose the bias the zero_grad check follows: the last weighted layer's, when the optimizer has it."""
        self.watched = None
        for layer in self.layers:
            bias = getattr(layer.module, "bias", None)
            if layer.kind == "weighted" and isinstance(bias, nn.Parameter) and id(bias) in optimized:
                self.watched = (layer, bias, 1 if isinstance(layer.module, CONVS) else -1)

    def arm(self, optimizer: torch.optim.Optimizer | None, *, histograms: bool, regular: bool = True) -> None:
        """Hook the step about to run; ``regular=False`` records only the histogram-step quantities (the
        run's last step, off the sampling grid: the series keep their grid)."""
        self.disarm()
        self.armed, self._histogram_step, self._regular = True, histograms, regular
        self._forward, self._params, self._calls = Sample(), Sample(), {}  # also when the root forward is not
        # called (Lightning's training_step calls self.net(x)): each sampled step names its layers afresh
        self._inputs = _now(self.plan.inputs, histograms, regular)
        self._outputs = _now(self.plan.outputs, histograms, regular)
        if self.layers:
            self._handles.append(self.model.register_forward_pre_hook(self._on_input, with_kwargs=True))
            self._handles.append(self.model.register_forward_hook(self._on_output))
            for layer, hook in zip(self.layers, self._layer_hooks):
                self._handles.append(layer.module.register_forward_hook(hook))
        self._probe = ParameterProbe(self.params, None if self.watched is None else self.watched[1],
                                     _now(self.plan.gradients, histograms, regular),
                                     _now(self.plan.updates, histograms, regular),
                                     self._params)
        self._probe.arm(optimizer)

    def disarm(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        if self._probe is not None:
            self._probe.disarm()
            self._probe = None
        self.armed = False

    def finish(self) -> Sample:
        """Take the hooks off and hand over the step's Sample."""
        self.disarm()
        sample = Sample()
        sample.extend(self._forward)
        sample.extend(self._params)
        self._forward, self._params = Sample(), Sample()
        return sample

    # --- hooks ------------------------------------------------------------------------------------------------
    def _on_input(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """A training forward pass begins (positional ``model(x)`` or keyword ``model(**batch)``, as a Hugging Face
        Trainer calls it): only the step's last one counts."""
        if not torch.is_grad_enabled() or not (args or kwargs):
            return
        self._forward, self._calls = Sample(), {}
        if self._probe is not None:
            self._probe.new_forward()
        self.probe_input = ProbeInput.of(args, kwargs, self.k)
        x = next((v for v in (*args, *kwargs.values())
                  if isinstance(v, Tensor) and v.is_floating_point() and v.dim() > 0), None)
        k = self.k
        if self._inputs and x is not None:
            xs = x.detach()[:k]
            for q in self._inputs:
                self._forward.add(q, None, q.measure(xs))

    def _on_output(self, module: nn.Module, args: Any, out: Any) -> None:
        y = first_tensor(out)
        if not torch.is_grad_enabled() or y is None or not y.is_floating_point():
            return
        if y.dim() == 2:
            self.num_outputs = int(y.shape[1])
        if self._outputs:
            ys = y.detach()[: self.k]
            for q in self._outputs:
                self._forward.add(q, None, q.measure(ys))

    def _on_layer(self, layer: Watched, per: _LayerPlan, module: nn.Module, args: Any, out: Any) -> None:
        y = out if type(out) is Tensor else first_tensor(out)
        if y is None or not y.is_floating_point() or not torch.is_grad_enabled():
            return
        calls = self._calls[layer.name] = self._calls.get(layer.name, 0) + 1
        name = layer.name if calls == 1 else f"{layer.name}#{calls}"
        if name not in self._ordered:
            self._ordered.add(name)
            self.order.append((name, layer))
        every = per.every if self._regular else []
        quantities = every + per.occasional if self._histogram_step and per.occasional else every
        if quantities:
            pre = None
            if per.wants_pre:
                x = first_tensor(args)
                pre = None if x is None else x.detach()[: self.k]
            source = LayerOutput(name, layer, y.detach()[: self.k], pre)
            for q in quantities:
                self._forward.add(q, name, q.measure(source))
        if self.watched is not None and layer is self.watched[0] and self._probe is not None:
            self._probe.watch_output(y, self.watched[2])
