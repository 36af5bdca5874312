"""``Monitor``: babysit every layer of a model in any training loop (lecture B4, B5).

Every ``every``-th step (the first step included) is *sampled*: hooks are put on every watched layer, on
backward and around ``optimizer.step()`` for that one step, and taken off again. A sampled step records

- ``act/<layer>/mean|std`` for every watched leaf, ``act/<layer>/dead`` for ReLUs, ``act/<layer>/saturated``
  for tanh/sigmoid (on the first ``sample_size`` examples of the batch only);
- ``grad/<param>/norm|std``, ``weight/<param>/norm`` and ``ratio/<param>`` (update/weight, from the step
  the optimizer actually took), ``grad/carry`` (gradient left over from earlier steps);
- ``input/mean|std`` and ``output/min|max|rowsum_err`` (inputs normalised? outputs already probabilities?);
- fixed-bin histograms of activations and weight gradients every ``histograms_every``-th sampled step.

Nothing is read from the device during training: a sampled step's values are stacked into one vector
that waits on the device until the epoch ends (``end_epoch`` / ``flush``), when everything pending is
copied in one transfer. Steps in between cost one counter increment. Memory is bounded: at most
``max_points`` values per series and ``max_histograms`` snapshots per histogram key (older ones thinned),
and at most one epoch of pending vectors (auto-flushed beyond ``MAX_PENDING`` sampled steps).

Example:
    >>> import torch
    >>> from babysit import Monitor
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> m = Monitor(model, opt, every=2)
    >>> for _ in range(4):
    ...     loss = torch.nn.functional.cross_entropy(model(torch.randn(16, 4)), torch.randint(0, 3, (16,)))
    ...     opt.zero_grad(); loss.backward(); opt.step()
    ...     m.step(loss)
    >>> m.end_epoch(train_acc=0.5, val_acc=0.4)
    >>> m.history.series["ratio/0.weight"]["step"]
    [1, 3]
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import Tensor, nn

from babysit.errors import ConfigError
from babysit.findings import Finding
from babysit.history import History
from babysit.monitors import _probes, _stats
from babysit.monitors._layers import Watched, layer_records, parameter_records, stochastic_in_training, watched_layers
from babysit.monitors._params import ParameterProbe
from babysit.monitors._stats import Chunk
from babysit.monitors._store import Pending, Row, read_out

# Sample every 25th step by default: on the digits MLP/CNN (CPU) a sampled step costs ~1-2 plain steps, so
# this keeps fit(monitor=True) near 1.03x a hand-written loop (bench/monitor_overhead.py).
DEFAULT_EVERY = 25
MAX_PENDING = 256  # sampled steps kept on the device before an automatic readout
EVAL_TOLERANCE = 1e-5  # relative disagreement of two evaluation passes that counts as nondeterministic


class Monitor:
    """Record per-layer and per-parameter statistics of a training run into a :class:`History`.

    Args:
        model: the model being trained.
        optimizer: its optimizer (``fit`` attaches its own when None); needed for update ratios.
        every: sample every ``every``-th step, starting with the first.
        sample_size: examples of the batch the activation statistics look at.
        histograms_every: keep histograms on every ``histograms_every``-th sampled step (0: never).
        max_points: the most values one series keeps (the memory cap).
        max_histograms: the most snapshots one histogram key keeps.
        activations: hook the layers (False: only parameters, e.g. under ``torch.compile``).
        watch_eval: catch evaluation passes of your own loop made in training mode with dropout active
            (a root hook kept on through the first epoch and around the end of later ones; ``fit``, which
            always evaluates in evaluation mode, turns it off).
        history: record into this History (``fit`` passes its own) instead of a new one.
    """

    def __init__(
        self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, *, every: int = DEFAULT_EVERY,
        sample_size: int = 32, histograms_every: int = 10, max_points: int = 1000, max_histograms: int = 20,
        activations: bool = True, watch_eval: bool = True, history: History | None = None,
    ) -> None:
        for name, value, low in (("every", every, 1), ("sample_size", sample_size, 1), ("max_points", max_points, 2),
                                 ("max_histograms", max_histograms, 2), ("histograms_every", histograms_every, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"Monitor {name} must be an integer >= {low}, got {name}={value!r}.")
        if not isinstance(model, nn.Module):
            raise ConfigError(f"Monitor needs the torch.nn.Module being trained, got {type(model).__name__}.")
        self.model, self.optimizer = model, None
        self.every, self.sample_size, self.histograms_every = every, sample_size, histograms_every
        self.max_points, self.max_histograms = max_points, max_histograms
        self._history = history if history is not None else History()
        self._layers: list[Watched] = watched_layers(model) if activations else []
        self._activations = activations
        self._params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self._optimized: set[int] = set()
        self._pending = Pending()
        self._steps_done = len(self._history.steps["step"])
        self._epoch_start = self._steps_done  # own loops: the step count when this epoch began
        self._epoch_row = self._steps_done  # own loops: this epoch's first row in history.steps
        self._losses: list[Tensor] = []  # own loops: this epoch's per-step losses, still on the device
        self._lrs: list[float] = []
        self._chunks: list[Chunk] | None = None  # the sampled step in progress: parameter statistics
        self._forward_chunks: list[Chunk] = []  # ... and its last forward pass's activation statistics
        self._forward_histograms: list[tuple[str, Tensor, str | None]] = []
        self._calls: dict[str, int] = {}
        self._order: list[tuple[str, Watched]] = []
        self._handles: list[Any] = []
        self._probe: ParameterProbe | None = None
        self._probe_input: tuple[Any, ...] | None = None
        self._eval_checked = False  # this epoch's evaluation passes were compared already
        self._eval_epochs = 0
        self._in_probe = False
        self._section = self._history.sections.setdefault("monitor", {})
        self._section.update(every=every, sample_size=sample_size, activations=activations)
        self._watch_eval = watch_eval
        self._eval_handle: Any = None
        self._last_epoch_steps: int | None = None  # own loops: the length of the last closed epoch
        self._set_eval_watch(watch_eval)
        if optimizer is not None:
            self.watch_optimizer(optimizer)
        else:
            self._section["parameters"] = parameter_records(model, self._optimized)
        self._arm_if_sampled()

    # --- public -----------------------------------------------------------------------------------------
    @property
    def history(self) -> History:
        """The History being filled (everything pending is read out first)."""
        self.flush()
        return self._history

    def watch_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Measure the updates ``optimizer`` takes (``fit`` calls this when the Monitor came without one)."""
        if self.optimizer is not None and self.optimizer is not optimizer:
            raise ConfigError("this Monitor already watches another optimizer; build one Monitor per optimizer.")
        self.optimizer = optimizer
        self._optimized = {id(p) for group in optimizer.param_groups for p in group["params"]}
        self._section["parameters"] = parameter_records(self.model, self._optimized)
        if self._chunks is not None:  # re-arm the step in progress so its update is measured too
            self._disarm()
            self._arm()

    def bind(self, history: History) -> None:
        """Record into ``history`` from now on (``fit`` binds a resumed run's History)."""
        self.flush()
        history.sections.setdefault("monitor", {}).update(self._section)
        self._history, self._section = history, history.sections["monitor"]
        self._steps_done = self._epoch_start = self._epoch_row = len(history.steps["step"])
        self._disarm()
        self._arm_if_sampled()

    def step(self, loss: Tensor | float | None = None) -> None:
        """Call once per training step, after ``optimizer.step()``; ``loss`` is recorded per step (own loops)."""
        if self._chunks is not None:
            self._finish_sample()
        self._steps_done += 1
        if loss is not None:
            self._losses.append(loss.detach() if isinstance(loss, Tensor) else torch.tensor(float(loss)))
            self._lrs.append(float(self.optimizer.param_groups[0]["lr"]) if self.optimizer is not None else None)
        self._arm_if_sampled()
        if self._watch_eval and self._eval_handle is None and self._last_epoch_steps is not None \
                and self._steps_done - self._epoch_start >= self._last_epoch_steps - 1:
            self._set_eval_watch(True)  # the epoch is about to end: its evaluation passes come next
        if len(self._pending.rows) >= MAX_PENDING:
            self.flush()

    def end_epoch(self, *, train_acc: float | None = None, val_acc: float | None = None,
                  train_loss: float | None = None, val_loss: float | None = None, **extra: Any) -> None:
        """Close an epoch of your own loop: append its record to the History and read out the statistics."""
        self._last_epoch_steps, self._epoch_start = self._steps_done - self._epoch_start, self._steps_done
        self._set_eval_watch(False)
        losses = self._read_losses(closing=True)
        mean = sum(losses) / len(losses) if losses else None
        lr = self.optimizer.param_groups[0]["lr"] if self.optimizer is not None else None
        self._history.epochs.append({
            "epoch": len(self._history.epochs) + 1, "train_loss": train_loss if train_loss is not None else mean,
            "data_loss": train_loss if train_loss is not None else mean, "reg_loss": None,
            "train_acc": train_acc, "val_loss": val_loss, "val_acc": val_acc, "lr": lr, "steps": len(losses), **extra,
        })
        self.check_evaluation()
        self.flush()

    def flush(self) -> None:
        """Copy every pending statistic to the host in one transfer (``history`` does this for you)."""
        if self._losses:
            self._read_losses(closing=False)
        read_out(self._pending, self._history, max_points=self.max_points, max_histograms=self.max_histograms)

    def check_evaluation(self) -> None:
        """Once an epoch (``end_epoch`` and ``fit`` call it): compare two evaluation-mode passes over the kept
        examples, on epochs 1, 2, 4, 8, ... (a model's evaluation is deterministic or not by its code, so
        log-spaced checks suffice and cost nothing measurable). An evaluation pass of your own loop made in
        training mode with active dropout is caught by an always-on hook instead."""
        self._eval_epochs += 1
        due = self._eval_epochs & (self._eval_epochs - 1) == 0
        if due and self._probe_input is not None and not self._eval_checked:
            value = _probes.eval_mode_disagreement(self.model, self._probe_input)
            if value is not None:
                self._add_row("eval/disagreement", value)
        self._eval_checked = False

    def locate_nonfinite(self) -> str | None:
        """Name the first layer whose output is non-finite, store it in the History and return it."""
        self.flush()
        layer = _first_nonfinite_in_series(self._history)
        if layer is None and self._probe_input is not None:
            layer = _probes.first_nonfinite_layer(self.model, [w for _, w in self._order] or self._layers,
                                                  self._probe_input)
        self._section["nonfinite"] = {"layer": layer, "step": self._steps_done,
                                      "parameters": _probes.nonfinite_parameters(self.model)[:20]}
        return layer

    def diagnose(self, rules: list[str] | None = None) -> list[Finding]:
        """Judge what was recorded so far (see :func:`babysit.diagnose.diagnose`)."""
        from babysit.diagnose import diagnose

        history = self.history
        if "nonfinite" not in self._section and any(v != v or abs(v) == float("inf") for v in history.steps["loss"]):
            self.locate_nonfinite()
        return diagnose(history, rules=rules)

    def close(self) -> None:
        """Remove every hook and read out what is pending."""
        self._disarm()
        self._set_eval_watch(False)
        self.flush()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Monitor(every={self.every}, layers={len(self._layers)}, params={len(self._params)}, " \
               f"steps={self._steps_done})"

    # --- arming one sampled step --------------------------------------------------------------------------
    def _arm_if_sampled(self) -> None:
        if self._steps_done % self.every == 0:  # the step about to run is 1, 1 + every, 1 + 2 every, ...
            self._arm()

    def _arm(self) -> None:
        self._chunks, self._calls = [], {}
        sample_index = self._steps_done // self.every
        histograms = self.histograms_every > 0 and sample_index % self.histograms_every == 0
        self._histograms = histograms
        if self._activations:
            self._handles.append(self.model.register_forward_pre_hook(self._on_input))
            self._handles.append(self.model.register_forward_hook(self._on_output))
            for layer in self._layers:
                self._handles.append(layer.module.register_forward_hook(functools.partial(self._on_layer, layer)))
        self._probe = ParameterProbe(self._params, self._optimized, histograms, self._emit, self._emit_histogram)
        self._probe.arm(self.optimizer)

    def _disarm(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        if self._probe is not None:
            self._probe.disarm()
            self._probe = None

    def _finish_sample(self) -> None:
        chunks = self._forward_chunks + (self._chunks or [])
        for key, values, activation in self._forward_histograms:
            self._pending.histograms.append((self._steps_done + 1, key, activation, values))
        self._disarm()
        self._chunks, self._forward_chunks, self._forward_histograms = None, [], []
        if chunks:
            self._pending.rows.append(Row.of(self._steps_done + 1, chunks))
        if self._order and not self._history.layers:
            self._history.layers = layer_records([w for _, w in self._order])
            for record, (name, _) in zip(self._history.layers, self._order):
                record["name"] = name

    def _emit(self, chunk: Chunk) -> None:
        if self._chunks is not None:
            self._chunks.append(chunk)

    def _add_row(self, key: str, value: Tensor) -> None:
        self._pending.rows.append(Row.of(max(self._steps_done, 1), [Chunk([key], value.reshape(1).double())]))

    def _emit_histogram(self, key: str, values: Tensor) -> None:
        self._pending.histograms.append((self._steps_done + 1, key, None, values))

    # --- hooks (active on sampled steps only) ---------------------------------------------------------------
    def _on_input(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        """A training forward pass begins: only the step's last one counts (accumulation, L-BFGS closures)."""
        if not torch.is_grad_enabled() or not args:
            return
        self._forward_chunks, self._forward_histograms, self._calls = [], [], {}
        k = self.sample_size
        self._probe_input = tuple(a.detach()[:k].clone() if isinstance(a, Tensor) and a.dim() > 0 else a
                                  for a in args)
        x = args[0]
        if isinstance(x, Tensor) and x.is_floating_point():
            self._forward_chunks.append(_stats.input_chunk(_stats.subsample(x, k)))

    def _on_output(self, module: nn.Module, args: Any, out: Any) -> None:
        y = _stats.first_tensor(out)
        if not torch.is_grad_enabled() or y is None or not y.is_floating_point():
            return
        if y.dim() == 2:
            self._section["num_outputs"] = int(y.shape[1])
        self._forward_chunks.append(_stats.output_chunk(_stats.subsample(y, self.sample_size)))

    def _on_layer(self, layer: Watched, module: nn.Module, args: Any, out: Any) -> None:
        y = _stats.first_tensor(out)
        if not torch.is_grad_enabled() or y is None or not y.is_floating_point():
            return
        calls = self._calls[layer.name] = self._calls.get(layer.name, 0) + 1
        name = layer.name if calls == 1 else f"{layer.name}#{calls}"
        if not self._history.layers and all(n != name for n, _ in self._order):
            self._order.append((name, layer))
        ys = _stats.subsample(y, self.sample_size)
        pre = _stats.first_tensor(args) if layer.saturating else None
        pre = None if pre is None else _stats.subsample(pre, self.sample_size)
        self._forward_chunks.append(_stats.layer_chunk(name, ys, pre, dead=layer.dead, saturating=layer.saturating))
        if self._histograms:
            self._forward_histograms.append((f"act/{name}", _stats.histogram_sample(ys), layer.activation))

    def _on_eval_forward(self, module: nn.Module, args: Any, out: Any) -> None:
        """Always on, but acts only on an evaluation pass (no grad) in training mode with active dropout:
        it runs the same input again and records how much the two passes disagree (once an epoch)."""
        if torch.is_grad_enabled() or not module.training or self._in_probe or self._eval_checked:
            return
        active = stochastic_in_training(module)
        if not active:
            return
        self._in_probe = True
        try:
            value = _probes.disagreement(out, module(*args))
        finally:
            self._in_probe = False
        if value is not None:
            self._eval_checked = True
            self._add_row("eval/disagreement_train_mode", value)
            self._section["eval_dropout_layers"] = active

    def _set_eval_watch(self, on: bool) -> None:
        if on and self._eval_handle is None:
            self._eval_handle = self.model.register_forward_hook(self._on_eval_forward)
        elif not on and self._eval_handle is not None:
            self._eval_handle.remove()
            self._eval_handle = None

    # --- own loops: per-step losses ----------------------------------------------------------------------------
    def _read_losses(self, *, closing: bool) -> list[float]:
        """Move this epoch's step losses to ``history.steps`` (one transfer); return all of the epoch's losses."""
        steps = self._history.steps
        if self._losses:
            values = torch.stack([v.float().reshape(()) for v in self._losses]).cpu().tolist()
            first = len(steps["step"])
            steps["step"].extend(range(first + 1, first + len(values) + 1))
            steps["loss"].extend(values)
            steps["lr"].extend(self._lrs)
            steps["epoch"].extend([None] * len(values))
            self._losses, self._lrs = [], []
        epoch_losses = steps["loss"][self._epoch_row :]
        count = len(epoch_losses)
        if closing:
            done = len(self._history.epochs)
            for i in range(count):
                steps["epoch"][self._epoch_row + i] = done + (i + 1) / count
            self._epoch_row = len(steps["step"])
        return epoch_losses


def _first_nonfinite_in_series(history: History) -> str | None:
    """The first layer (forward order) with a non-finite activation statistic at the earliest such step."""
    best: tuple[int, int, str] | None = None
    order = {layer["name"]: layer["depth"] for layer in history.layers}
    for key, column in history.series.items():
        if not key.startswith("act/"):
            continue
        name = key.split("/")[1]
        for step, value in zip(column["step"], column["value"]):
            if value != value or abs(value) == float("inf"):
                candidate = (step, order.get(name, 10**6), name)
                best = candidate if best is None or candidate < best else best
                break
    return None if best is None else best[2]
