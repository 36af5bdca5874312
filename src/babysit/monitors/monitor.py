"""``Monitor``: babysit every layer of a model in any training loop (lecture B4, B5).

Every ``every``-th step (the first step included) is *sampled*: hooks are put on every watched layer, on
backward and around ``optimizer.step()`` for that one step, and taken off again. What a sampled step records
is a list of quantities (:mod:`babysit.quantities`; ``quantities=`` and ``skip=`` choose them, the default is
all built-ins):

- ``activation_moments`` (``act/<layer>/mean|std``) for every watched leaf, ``dead_fraction``
  (``act/<layer>/dead``) for ReLUs, ``saturation`` (``act/<layer>/saturated``) for tanh/sigmoid (on the first
  ``sample_size`` examples of the batch only);
- ``gradient_norm`` (``grad/<param>/norm``), ``update_ratio`` (``ratio/<param>`` and ``weight/<param>/norm``:
  update/weight, from the step the optimizer actually took), ``gradient_carry`` (``grad/carry``: gradient left
  over from earlier steps);
- ``input_moments`` (``input/mean|std``) and ``output_range`` (``output/min|max|rowsum_err``): inputs
  normalised? outputs already probabilities?;
- ``activation_histogram`` and ``gradient_histogram`` (fixed-bin histograms) and ``gradient_std``
  (``grad/<param>/std``), every ``histograms_every``-th sampled step (the first included), and on the last
  step of the run when it is known (``expect_last_step``; ``fit`` sets it: the report compares the
  distributions at the start and at the end of training; off the sampling grid that step records only these);
- ``eval_disagreement`` (``eval/disagreement``, ``eval/disagreement_train_mode``): evaluation determinism.

Nothing is read from the device during training: a sampled step's values are stacked into one vector
that waits on the device until the epoch ends (``end_epoch`` / ``flush``), when everything pending is
copied in one transfer. Steps in between cost one counter increment.

Memory cap: at most ``max_points`` values per series and ``max_histograms`` snapshots per histogram key
(older ones thinned, the first kept), and at most ``MAX_PENDING`` sampled steps waiting on the device
(an automatic readout beyond that); the per-step losses of your own loop are one float per step, like
``fit``'s. Nothing else grows with the number of steps.

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
    >>> m.history.series_of("update_ratio", target="0.weight").steps
    [1, 3]
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from babysit._checks import check_module, check_optimizer
from babysit._names import unknown_name
from babysit.errors import ConfigError
from babysit.findings import Finding
from babysit.history import History
from babysit.monitors import _probes
from babysit.monitors._layers import layer_records, parameter_records, stochastic_in_training, watched_layers
from babysit.monitors._sampling import Sampler
from babysit.monitors._stats import Sample
from babysit.monitors._store import Pending, Row, read_out
from babysit.quantities import EvaluationQuantity, Measurement, Passes, Quantity, QuantityLike, parse_key, resolve

# Sample every 100th step by default. On the CPU digits MLP (a 0.4 ms step) a sampled step costs ~1 ms,
# so every 100th keeps fit(monitor=True) within ~2% of fit(monitor=False) (bench/monitor_overhead.py);
# larger models and GPUs pay relatively less per sampled step.
# The first step is always sampled, so a bad initialisation is seen however short the run.
# fit(monitor={"every": N}) or Monitor(..., every=N) changes it.
DEFAULT_EVERY = 100
MAX_PENDING = 256  # sampled steps kept on the device before an automatic readout


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
        quantities: what to record: names (``"dead_fraction"``), :class:`babysit.quantities.Quantity` classes or
            instances; None records ``babysit.quantities.DEFAULT`` (every built-in). A quantity of your own is
            one class: ``quantities=[*DEFAULT, ActivationMax]``.
        skip: names of quantities to leave out (``skip=["gradient_histogram"]``).

    The names recorded are kept in ``history.sections["monitor"]["quantities"]`` (those that cannot be
    measured are left out: layer quantities with ``activations=False``, histogram-step ones with
    ``histograms_every=0``); a diagnosis rule that needs one that was not recorded is reported as skipped.

    Raises:
        ConfigError: a bad setting, a model that is not an ``nn.Module`` instance, an optimizer that is not a
            ``torch.optim.Optimizer`` instance, or an unknown quantity name (the message lists the known ones).
    """

    def __init__(
        self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, *, every: int = DEFAULT_EVERY,
        sample_size: int = 32, histograms_every: int = 10, max_points: int = 1000, max_histograms: int = 20,
        activations: bool = True, watch_eval: bool = True, history: History | None = None,
        quantities: QuantityLike | Iterable[QuantityLike] | None = None,
        skip: QuantityLike | Iterable[QuantityLike] = (),
    ) -> None:
        for name, value, low in (("every", every, 1), ("sample_size", sample_size, 1), ("max_points", max_points, 2),
                                 ("max_histograms", max_histograms, 2), ("histograms_every", histograms_every, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"Monitor {name} must be an integer >= {low}, got {name}={value!r}.")
        check_module(model, "Monitor")
        check_optimizer(optimizer, "Monitor")  # before any hook goes on the model
        self.model, self.optimizer = model, None
        self.every, self.sample_size, self.histograms_every = every, sample_size, histograms_every
        self.max_points, self.max_histograms = max_points, max_histograms
        self._history = history if history is not None else History()
        self.quantities: list[Quantity] = _measurable(resolve(quantities, skip), activations=activations,
                                                      histograms=histograms_every > 0)
        self._evaluation = [q for q in self.quantities if isinstance(q, EvaluationQuantity)]
        self._layers = watched_layers(model) if activations else []
        self._sampler = Sampler(model, self._layers, [(n, p) for n, p in model.named_parameters() if p.requires_grad],
                                sample_size=sample_size, quantities=self.quantities)
        self._pending = Pending()
        self._steps_done = self._history.num_steps
        self._epoch_start = self._steps_done  # own loops: the step count when this epoch began
        self._losses: list[Tensor] = []  # own loops: this epoch's per-step losses, still on the device
        self._lrs: list[float | None] = []
        self._epoch_values: list[float] = []  # own loops: this epoch's losses read to the host
        self._epoch_lrs: list[float | None] = []
        self._epoch_added = 0  # of which already in the History (read before the epoch closed)
        self._last_epoch_steps: int | None = None  # own loops: the length of the last closed epoch
        self._eval_checked = False  # this epoch's evaluation passes were compared already
        self._eval_epochs = 0
        self._in_probe = False
        self._last_step: int | None = None  # the run's last step, sampled with histograms (expect_last_step)
        self._quiet_until = 0  # step() only counts while fewer steps than this are done (see _quiet_horizon)
        self._watch_eval, self._eval_handle = watch_eval and bool(self._evaluation), None
        self._section = self._history.sections.setdefault("monitor", {})
        self._section.update(every=every, sample_size=sample_size, activations=activations,
                             quantities=[q.name for q in self.quantities])
        self._set_eval_watch(self._watch_eval)
        if optimizer is not None:
            self.watch_optimizer(optimizer)
        else:
            self._section["parameters"] = parameter_records(model, set())
        self._arm_if_sampled()

    # --- public -----------------------------------------------------------------------------------------
    @property
    def history(self) -> History:
        """The History being filled (everything pending is read out first)."""
        self.flush()
        return self._history

    def watch_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Measure the updates ``optimizer`` takes (``fit`` calls this when the Monitor came without one)."""
        check_optimizer(optimizer, "Monitor")
        if self.optimizer is not None and self.optimizer is not optimizer:
            raise ConfigError("this Monitor already watches another optimizer; build one Monitor per optimizer.")
        self.optimizer = optimizer
        optimized = {id(p) for group in optimizer.param_groups for p in group["params"]}
        self._sampler.watch(optimized)
        self._section["parameters"] = parameter_records(self.model, optimized)
        self._section["optimizer"] = type(optimizer).__name__  # the diagnosis judges L-BFGS's steps apart
        if self._sampler.armed:  # re-arm the step in progress so its update is measured too
            self._arm()

    def bind(self, history: History) -> None:
        """Record into ``history`` from now on (``fit`` binds its own, or a resumed run's, History)."""
        self.flush()
        history.sections.setdefault("monitor", {}).update(self._section)
        self._history, self._section = history, history.sections["monitor"]
        self._steps_done = self._epoch_start = history.num_steps
        self._epoch_values, self._epoch_lrs, self._epoch_added = [], [], 0
        self._sampler.disarm()
        self._quiet_until = 0
        self._arm_if_sampled()

    def step(self, loss: Tensor | float | None = None) -> None:
        """Call once per training step, after ``optimizer.step()``; ``loss`` is recorded per step (own loops)."""
        if self._steps_done < self._quiet_until and loss is None:  # a step with nothing to do: fit's steps
            self._steps_done += 1  # between samples cost this and one compare
            return
        if self._sampler.armed:
            self._finish_sample()
        self._steps_done = done = self._steps_done + 1
        if loss is not None:
            self._losses.append(loss.detach() if isinstance(loss, Tensor) else torch.tensor(float(loss)))
            self._lrs.append(float(self.optimizer.param_groups[0]["lr"]) if self.optimizer is not None else None)
        if done % self.every == 0 or done + 1 == self._last_step:
            self._arm()  # the next step is sampled: 1 + k * every, or the run's last
        if self._watch_eval and self._eval_handle is None and self._last_epoch_steps is not None \
                and done - self._epoch_start >= self._last_epoch_steps - 1:
            self._set_eval_watch(True)  # the epoch is about to end: its evaluation passes come next
        self._quiet_until = self._quiet_horizon()

    def _quiet_horizon(self) -> int:
        """Steps done below which a ``step()`` has nothing to do: the step before the next one to arm (the next
        multiple of ``every``, or the run's last); none while a sample is armed or the evaluation watch is on."""
        done = self._steps_done
        if self._sampler.armed or self._watch_eval:
            return 0
        horizon = (done // self.every + 1) * self.every - 1
        if self._last_step is not None and self._last_step - 2 >= done:
            horizon = min(horizon, self._last_step - 2)
        return horizon

    def expect_last_step(self, step: int) -> None:
        """Sample global step ``step``, the run's last, with histograms: the end of training is then seen as
        well as its start, whatever ``every`` and ``histograms_every`` (``fit`` calls this with its planned
        length; a run stopped early ends without it)."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise ConfigError(f"expect_last_step needs a step number >= 1, got {step!r}.")
        self._last_step = step if self.histograms_every else None  # no histograms: nothing to take
        self._quiet_until = 0
        # the next step is the last: (re-)arm it with histograms
        if self._last_step is not None and self._steps_done + 1 == step:
            self._arm()

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
        if self._sampler.order and not self._history.layers:
            self._history.layers = layer_records([w for _, w in self._sampler.order])
            for record, (name, _) in zip(self._history.layers, self._sampler.order):
                record["name"] = name
        if self._sampler.num_outputs is not None:
            self._section["num_outputs"] = self._sampler.num_outputs
        elif "num_outputs" not in self._section and self._sampler.order:
            # the model's own forward never ran (a LightningModule whose training_step calls self.net(x)): the
            # last Linear layer's width is the number of scores (classes, or a language model's vocabulary)
            last = next((w.module for _, w in reversed(self._sampler.order) if isinstance(w.module, nn.Linear)), None)
            if last is not None:
                self._section["num_outputs"] = int(last.out_features)
        read_out(self._pending, self._history, max_points=self.max_points, max_histograms=self.max_histograms)

    def check_evaluation(self) -> None:
        """Once an epoch (``end_epoch`` and ``fit`` call it): compare two evaluation-mode passes over the kept
        examples, on epochs 1, 4, 16, 64, ... (a model's evaluation is deterministic or not by its code, so
        log-spaced checks suffice and cost nothing measurable). An evaluation pass of your own loop made in
        training mode with active dropout is caught by the evaluation watch instead."""
        self._eval_epochs += 1
        n = self._eval_epochs
        due = n & (n - 1) == 0 and (n.bit_length() - 1) % 2 == 0  # epochs 1, 4, 16, 64, ...
        if due and self._evaluation and self._sampler.probe_input is not None and not self._eval_checked:
            first, second = _probes.eval_mode_passes(self.model, self._sampler.probe_input)
            passes = Passes(first, second, "eval")
            for q in self._evaluation:
                self._add_measurement(q, q.measure(passes))
        self._eval_checked = False

    def locate_nonfinite(self) -> str | None:
        """Name the first layer whose output is non-finite, store it in the History and return it."""
        self.flush()
        layer = _first_nonfinite_in_series(self._history, self.quantities)
        if layer is None and self._sampler.probe_input is not None:
            order = [w for _, w in self._sampler.order] or self._layers
            layer = _probes.first_nonfinite_layer(self.model, order, self._sampler.probe_input)
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
        self._sampler.disarm()
        self._set_eval_watch(False)
        self.flush()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Monitor(every={self.every}, layers={len(self._layers)}, steps={self._steps_done})"

    # --- sampled steps ------------------------------------------------------------------------------------------
    def _arm_if_sampled(self) -> None:
        if self._steps_done % self.every == 0:  # the step about to run is 1, 1 + every, 1 + 2 every, ...
            self._arm()

    def _arm(self) -> None:
        """Arm the step about to run; it keeps histograms on every ``histograms_every``-th sampled step and on
        the run's last (which, off the sampling grid, records only the histogram-step quantities)."""
        self._quiet_until = 0  # the armed step is finished by the next step()
        index, offset = divmod(self._steps_done, self.every)
        due = (offset == 0 and index % self.histograms_every == 0) if self.histograms_every else False
        last = self._steps_done + 1 == self._last_step
        self._sampler.arm(self.optimizer, histograms=due or last, regular=offset == 0)

    def _finish_sample(self) -> None:
        sample = self._sampler.finish()
        if sample.specs:
            self._pending.rows.append(Row.of(self._steps_done + 1, sample))
            if len(self._pending.rows) >= MAX_PENDING:
                self.flush()

    def _add_measurement(self, quantity: Quantity, measured: Measurement | None) -> bool:
        """Keep one model-wide measurement made outside a sampled step (at the current step)."""
        sample = Sample()
        sample.add(quantity, None, measured)
        if sample.specs:
            self._pending.rows.append(Row.of(max(self._steps_done, 1), sample))
        return bool(sample.specs)

    # --- evaluation passes of your own loop ------------------------------------------------------------------------
    def _set_eval_watch(self, on: bool) -> None:
        if on and self._eval_handle is None:
            self._eval_handle = self.model.register_forward_hook(self._on_eval_forward)
        elif not on and self._eval_handle is not None:
            self._eval_handle.remove()
            self._eval_handle = None

    def _on_eval_forward(self, module: nn.Module, args: Any, out: Any) -> None:
        """Acts only on an evaluation pass (no grad) in training mode with active dropout: it runs the same
        input again and records how much the two passes disagree (once an epoch)."""
        if torch.is_grad_enabled() or not module.training or self._in_probe or self._eval_checked:
            return
        active = stochastic_in_training(module)
        if not active:
            return
        self._in_probe = True
        try:
            passes = Passes(out, module(*args), "train")
        finally:
            self._in_probe = False
        recorded = [self._add_measurement(q, q.measure(passes)) for q in self._evaluation]
        if any(recorded):
            self._eval_checked = True
            self._section["eval_dropout_layers"] = active

    # --- own loops: per-step losses ----------------------------------------------------------------------------
    def _read_losses(self, *, closing: bool) -> list[float]:
        """Read this epoch's step losses from the device (one transfer) and put them into the History: with
        their fractional epochs when the epoch closes, else (someone reads the History mid-epoch) without.
        Returns all of the epoch's losses."""
        if self._losses:
            self._epoch_values += torch.stack([v.float().reshape(()) for v in self._losses]).cpu().tolist()
            self._epoch_lrs += self._lrs
            self._losses, self._lrs = [], []
        values, lrs = self._epoch_values, self._epoch_lrs
        start, count = self._epoch_added, len(values)
        first = self._history.num_steps + 1
        if closing:
            done = len(self._history.epochs)
            epochs = [done + (i + 1) / count for i in range(start, count)]
        else:
            epochs = [None] * (count - start)
        self._history.add_steps(list(range(first, first + count - start)), epochs, values[start:], lrs[start:])
        self._epoch_added = count
        if closing:
            self._epoch_values, self._epoch_lrs, self._epoch_added = [], [], 0
        return values


def check_settings(settings: Iterable[str], *, given: Iterable[str], who: str) -> None:
    """Each name in ``settings`` a Monitor setting its caller may pass (not one of ``given``, which the caller
    fills in itself), else a ConfigError from ``who`` naming it and the closest known one: a typo is caught when
    the settings are handed over, not when training starts."""
    known = [name for name in inspect.signature(Monitor).parameters if name not in set(given)]
    for name in settings:
        if name not in known:
            raise ConfigError(f"{who}: {unknown_name('Monitor setting', str(name), known)}")


def _measurable(quantities: list[Quantity], *, activations: bool, histograms: bool) -> list[Quantity]:
    """The quantities this Monitor can measure: layer hooks are off without ``activations`` (no layer outputs,
    model input or output, nor the incoming gradient of a layer), histogram steps never come without
    ``histograms``."""
    hooked = ("activations", "inputs", "outputs")
    return [q for q in quantities
            if (activations or (q.needs not in hooked and not getattr(q, "wants_incoming", False)))
            and (histograms or not q.histogram_steps_only)]


def _first_nonfinite_in_series(history: History, quantities: Iterable[Quantity]) -> str | None:
    """The first layer (forward order) with a non-finite activation statistic at the earliest such step."""
    best: tuple[int, int, str] | None = None
    order = {layer["name"]: layer["depth"] for layer in history.layers}
    layer_quantities = [q for q in quantities if q.scope == "layer" and q.store == "series"]
    for key, column in history.series.items():
        parsed = parse_key(key, among=layer_quantities)
        if parsed is None or parsed[2] is None:
            continue
        name = parsed[2]
        for step, value in zip(column["step"], column["value"]):
            if value != value or abs(value) == float("inf"):
                candidate = (step, order.get(name, 10**6), name)
                best = candidate if best is None or candidate < best else best
                break
    return None if best is None else best[2]
