"""One sampled step: hooks go on, statistics are written into a Sample on the device, hooks come off.

Between sampled steps nothing of this is attached to the model or the optimizer, so a plain step costs
nothing. Only the last training forward pass of a step counts (gradient accumulation runs several, an
L-BFGS closure may too); evaluation passes (no grad) are ignored.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import Tensor, nn

from babysit.monitors._layers import WEIGHTED, Watched
from babysit.monitors._params import ParameterProbe
from babysit.monitors._stats import Sample, first_tensor, histogram_sample

Histogram = tuple[str, Tensor, str | None]  # (key, values, activation kind for fixed edges)


class Sampler:
    """Arms the hooks of one sampled step and collects what they measure."""

    def __init__(self, model: nn.Module, layers: list[Watched], params: list[tuple[str, nn.Parameter]], *,
                 sample_size: int) -> None:
        self.model, self.layers, self.params, self.k = model, layers, params, sample_size
        self.watched: tuple[Watched, nn.Parameter, int] | None = None  # (layer, its bias, channel dim): zero_grad check
        self.order: list[tuple[str, Watched]] = []  # forward order of the watched calls, from the first sample
        self._ordered: set[str] = set()
        self.probe_input: tuple[Any, ...] | None = None  # a few examples of the last sampled batch
        self.num_outputs: int | None = None
        self.armed = False
        self._handles: list[Any] = []
        self._probe: ParameterProbe | None = None
        self._forward, self._params = Sample(), Sample()
        self._forward_histograms: list[Histogram] = []
        self._histograms: list[Histogram] = []
        self._calls: dict[str, int] = {}
        self._histogram_step = False

    def watch(self, optimized: set[int]) -> None:
        """Choose the bias the zero_grad check follows: the last Linear/Conv layer's, when the optimizer has it."""
        self.watched = None
        for layer in self.layers:
            bias = getattr(layer.module, "bias", None)
            if isinstance(layer.module, WEIGHTED) and isinstance(bias, nn.Parameter) and id(bias) in optimized:
                self.watched = (layer, bias, -1 if isinstance(layer.module, (nn.Linear, nn.Bilinear)) else 1)

    def arm(self, optimizer: torch.optim.Optimizer | None, *, histograms: bool) -> None:
        self.disarm()
        self.armed, self._histogram_step = True, histograms
        self._forward, self._params, self._forward_histograms, self._histograms = Sample(), Sample(), [], []
        if self.layers:
            self._handles.append(self.model.register_forward_pre_hook(self._on_input))
            self._handles.append(self.model.register_forward_hook(self._on_output))
            for layer in self.layers:
                self._handles.append(layer.module.register_forward_hook(functools.partial(self._on_layer, layer)))
        self._probe = ParameterProbe(self.params, None if self.watched is None else self.watched[1], histograms,
                                     self._params,
                                     lambda key, values: self._histograms.append((key, values, None)))
        self._probe.arm(optimizer)

    def disarm(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        if self._probe is not None:
            self._probe.disarm()
            self._probe = None
        self.armed = False

    def finish(self) -> tuple[Sample, list[Histogram]]:
        """Take the hooks off and hand over the step's Sample and histogram snapshots."""
        self.disarm()
        sample = Sample()
        sample.extend(self._forward)
        sample.extend(self._params)
        histograms = self._forward_histograms + self._histograms
        self._forward, self._params, self._forward_histograms, self._histograms = Sample(), Sample(), [], []
        return sample, histograms

    # --- hooks ------------------------------------------------------------------------------------------------
    def _on_input(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        """A training forward pass begins: only the step's last one counts."""
        if not torch.is_grad_enabled() or not args:
            return
        self._forward, self._forward_histograms, self._calls = Sample(), [], {}
        if self._probe is not None:
            self._probe.new_forward()
        k = self.k
        self.probe_input = tuple(a.detach()[:k].clone() if isinstance(a, Tensor) and a.dim() > 0 else a for a in args)
        x = args[0]
        if isinstance(x, Tensor) and x.is_floating_point():
            self._forward.inputs(x.detach()[:k])

    def _on_output(self, module: nn.Module, args: Any, out: Any) -> None:
        y = first_tensor(out)
        if not torch.is_grad_enabled() or y is None or not y.is_floating_point():
            return
        if y.dim() == 2:
            self.num_outputs = int(y.shape[1])
        self._forward.outputs(y.detach()[: self.k])

    def _on_layer(self, layer: Watched, module: nn.Module, args: Any, out: Any) -> None:
        y = out if type(out) is Tensor else first_tensor(out)
        if y is None or not y.is_floating_point() or not torch.is_grad_enabled():
            return
        calls = self._calls[layer.name] = self._calls.get(layer.name, 0) + 1
        name = layer.name if calls == 1 else f"{layer.name}#{calls}"
        if name not in self._ordered:
            self._ordered.add(name)
            self.order.append((name, layer))
        ys = y.detach()[: self.k]
        pre = None
        if layer.saturating:
            x = first_tensor(args)
            pre = None if x is None else x.detach()[: self.k]
        self._forward.layer(name, ys, pre, dead=layer.dead, saturating=layer.saturating)
        if self.watched is not None and layer is self.watched[0] and self._probe is not None:
            self._probe.watch_output(y, self.watched[2])
        if self._histogram_step:
            self._forward_histograms.append((f"act/{name}", histogram_sample(ys), layer.activation))
