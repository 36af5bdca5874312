"""Typed quantities: every statistic the Monitor records is a class, and rules say which ones they need.

A :class:`Quantity` has a stable ``name`` (``"dead_fraction"``), says what it ``needs`` (activations, inputs,
outputs, gradients, update, evaluation), owns the keys it writes (``act/{target}/dead``: the strings babysit
has always written, so old ``history.json`` files, the report and TensorBoard keep working), measures raw
values on the device on a sampled step and reduces them to numbers on the host at the epoch's readout.

- :data:`QUANTITIES`: the built-ins by name; :data:`DEFAULT`: the names the Monitor records by default
  (all of them); :func:`resolve` turns names, classes and instances into checked quantities.
- ``Monitor(model, opt, quantities=[...], skip=[...])`` records a chosen set; ``fit(monitor={"skip":
  ["dead_fraction"]})`` does the same through ``fit``.
- ``history.series_of("update_ratio", target="fc1.weight")``, ``history.targets("dead_fraction")`` and
  ``history.recorded_quantities()`` read them back without spelling a key.
- A rule declares ``@rule(code, needs=("dead_fraction",))``; when a quantity was not recorded the rule is
  reported as skipped (``babysit.diagnose.run_rules``), not silently quiet.

Adding a statistic is one class (and a test): subclass the family of its source, e.g. the largest
activation of every layer::

    class ActivationMax(LayerQuantity):
        name = "activation_max"
        keys = {"max": "act/{target}/max"}

        def measure(self, source):            # device: a 0-d tensor, nothing read back
            return Measurement((source.output.amax(),))

        def reduce(self, scalars, vector, context):   # host, at the epoch's readout
            return {"max": scalars[0]}

    Monitor(model, opt, quantities=[*DEFAULT, ActivationMax])
"""

from __future__ import annotations

from babysit.quantities._base import SCOPES, SOURCES, Measurement, Quantity
from babysit.quantities._families import (
    EvaluationQuantity,
    GradientQuantity,
    Gradients,
    InputQuantity,
    LayerOutput,
    LayerQuantity,
    OutputQuantity,
    Passes,
    PerName,
    PerParameter,
    Update,
    UpdateQuantity,
)
from babysit.quantities._histogram import Histogram
from babysit.quantities._registry import DEFAULT, QUANTITIES, QuantityLike, get, name_of, parse_key, resolve
from babysit.quantities.activations import ActivationHistogram, ActivationMoments, DeadFraction, Saturation
from babysit.quantities.evaluation import EvalDisagreement
from babysit.quantities.gradients import GradientCarry, GradientHistogram, GradientNorm, GradientStd
from babysit.quantities.model_io import InputMoments, OutputRange
from babysit.quantities.updates import UpdateRatio

__all__ = [
    "DEFAULT",
    "QUANTITIES",
    "SCOPES",
    "SOURCES",
    "ActivationHistogram",
    "ActivationMoments",
    "DeadFraction",
    "EvalDisagreement",
    "EvaluationQuantity",
    "GradientCarry",
    "GradientHistogram",
    "GradientNorm",
    "GradientQuantity",
    "GradientStd",
    "Gradients",
    "Histogram",
    "InputMoments",
    "InputQuantity",
    "LayerOutput",
    "LayerQuantity",
    "Measurement",
    "OutputQuantity",
    "OutputRange",
    "Passes",
    "PerName",
    "PerParameter",
    "Quantity",
    "QuantityLike",
    "Saturation",
    "Update",
    "UpdateQuantity",
    "UpdateRatio",
    "get",
    "name_of",
    "parse_key",
    "resolve",
]
