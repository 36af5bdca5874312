"""User data behind a ``"package.module:function"`` reference, as configs name it.

The function is called with no arguments and may return any of three forms:

* a :class:`DataBundle`, used as it is (its own normalization stands; ``normalize`` is not applied);
* a dict of arrays with the ``.npz`` keys ``X_train, y_train, X_val, y_val[, X_test, y_test]``;
* a tuple ``(train, val[, test])`` of torch ``Dataset`` objects yielding ``(x, y)`` pairs.

Datasets are materialised: every example is read once and stacked into one tensor per split. That is
right for the small data sets babysit's checks and searches target (everything fits in memory); for
data that does not, pass a ``DataLoader`` to ``babysit.fit`` directly instead of going through here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch

from babysit._factories import import_factory_module
from babysit.data._bundle import DataBundle
from babysit.data.arrays import from_arrays, from_mapping
from babysit.errors import DataError

__all__ = ["load_factory", "resolve"]


def resolve(ref: str) -> Any:
    """Import the object named by ``"package.module:attribute"``.

    Raises:
        DataError: malformed reference, module not importable, or attribute missing (naming which).
    """
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise DataError(f"a data factory is written 'package.module:function', got {ref!r}.")
    try:
        module = import_factory_module(module_name)  # also from the current folder and the config's folder
    except ImportError as exc:
        raise DataError(
            f"cannot import module {module_name!r} for data factory {ref!r}: {exc}. It is looked for on sys.path, "
            "in the current folder and in the config's folder; check the name, or add its folder to PYTHONPATH."
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise DataError(f"module {module_name!r} has no attribute {attr!r} (data factory {ref!r}).")
        obj = getattr(obj, part)
    if not callable(obj):
        raise DataError(f"data factory {ref!r} is a {type(obj).__name__}, not a function.")
    return obj


def _materialise(dataset: Any, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Read every ``(x, y)`` pair of a map-style or iterable Dataset and stack them."""
    items: Iterable[Any] = (
        (dataset[i] for i in range(len(dataset))) if hasattr(dataset, "__len__") else iter(dataset)
    )
    xs, ys = [], []
    for i, item in enumerate(items):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise DataError(
                f"the {split} dataset's item {i} is a {type(item).__name__}, not an (x, y) pair; "
                f"make __getitem__ return (features, label)."
            )
        try:
            x, y = torch.as_tensor(item[0]), torch.as_tensor(item[1])
        except (TypeError, ValueError, RuntimeError) as exc:
            raise DataError(f"the {split} dataset's item {i} is not numeric: {exc}") from exc
        if y.numel() != 1:
            raise DataError(
                f"the {split} dataset's item {i} has a label of shape {tuple(y.shape)}; "
                f"labels must be single class indices."
            )
        xs.append(x)
        ys.append(y.reshape(()))
    if not xs:
        raise DataError(f"the {split} split is empty (its Dataset has no items); give it data.")
    shapes = {tuple(x.shape) for x in xs}
    if len(shapes) > 1:
        raise DataError(
            f"the {split} dataset's examples have different shapes {sorted(shapes)[:3]}; stack needs one."
        )
    return torch.stack(xs), torch.stack(ys)


def load_factory(
    ref: str,
    *,
    normalize: str = "standardize",
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    num_classes: int | None = None,
) -> DataBundle:
    """Call the factory ``ref`` and turn what it returns into a :class:`DataBundle`.

    ``val_fraction`` and ``test_fraction`` are accepted for uniformity but unused: each accepted form
    already carries its validation split.

    Raises:
        DataError: import problems (see :func:`resolve`), an exception inside the factory, or a
            return value of another form (naming its type and the accepted forms).
    """
    del val_fraction, test_fraction
    fn = resolve(ref)
    try:
        out = fn()
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"data factory {ref!r} raised {type(exc).__name__}: {exc}") from exc
    name = ref.rpartition(":")[2]
    options: dict[str, Any] = {"num_classes": num_classes, "normalize": normalize, "seed": seed, "name": name}
    if isinstance(out, DataBundle):
        if num_classes is not None and out.num_classes != num_classes:
            raise DataError(f"data factory {ref!r} returned a DataBundle with num_classes={out.num_classes}, but "
                            f"num_classes={num_classes} was asked for (data.num_classes); make them agree.")
        return out
    if isinstance(out, Mapping):
        return from_mapping(out, f"the dict from data factory {ref!r}", **options)
    if isinstance(out, (tuple, list)) and len(out) in (2, 3):
        pairs = [_materialise(ds, split) for ds, split in zip(out, ("train", "val", "test"), strict=False)]
        return from_arrays(
            *(t for pair in pairs for t in pair), **options, description=f"datasets from {ref}"
        )
    raise DataError(
        f"data factory {ref!r} returned a {type(out).__name__}; return a DataBundle, a dict with keys "
        f"X_train, y_train, X_val, y_val[, X_test, y_test], or a tuple (train, val[, test]) of Datasets."
    )
