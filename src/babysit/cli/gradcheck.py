"""``babysit gradcheck TARGET``: check every parameter's gradient of a model (lecture L-G).

TARGET is ``package.module:factory``; ``factory()`` returns ``(model, loss_fn, inputs, targets)``,
optionally a fifth item ``regularization(model) -> scalar``, or a dict with those keys.  A TARGET
that names a file (a TOML config) checks that config's model and loss on a few training examples
(``babysit.train.from_config.gradcheck_target``), with its L2 term checked apart when ``train.reg > 0``.

Exit codes: 0 no wrong gradient; 1 a wrong gradient (``--strict``: also a suspicious one); 2 a bad
TARGET or option, with a message that says what came in and what is expected.

``--layer NAME`` checks one layer where it sits (its parameters and its input gradient, under what
it receives in one forward and backward of the whole model); ``--method`` picks how a whole model is
checked (``auto``: in place when tensors x parameters reaches 1e7).  The command prints the method and the time it took.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from babysit.cli._common import EXIT_OK, EXIT_PROBLEM, console, friendly_errors
from babysit.gradcheck import GradReport, check_module
from babysit.gradcheck._errors import GradcheckError

__all__ = ["load_target", "register", "report_table", "run_gradcheck_target"]

_KEYS = ("model", "loss_fn", "inputs", "targets", "regularization")
_STYLE = {"ideal": "green", "ok": "green", "suspicious": "yellow", "wrong": "bold red"}


def register(app: typer.Typer) -> None:
    """Add the ``gradcheck`` command to ``app``."""
    app.command("gradcheck")(gradcheck_command)


def run_gradcheck_target(model: Any, loss_fn: Any, inputs: Any, targets: Any = None, **opts: Any) -> GradReport:
    """Check a (model, loss, batch) target; ``opts`` go to ``check_module`` (regularization, samples, ...)."""
    return check_module(model, loss_fn, inputs, targets, **opts)


def _unpack(obj: Any, origin: str) -> dict[str, Any]:
    if isinstance(obj, Mapping):
        unknown = sorted(set(obj) - set(_KEYS))
        if unknown or not {"model", "loss_fn", "inputs"} <= set(obj):
            raise GradcheckError(
                f"{origin} returned a dict with keys {sorted(obj)}; expected {list(_KEYS)} "
                "(model, loss_fn and inputs required)."
            )
        return dict(obj)
    if isinstance(obj, (tuple, list)) and len(obj) in (4, 5):
        return dict(zip(_KEYS, obj, strict=False))
    raise GradcheckError(
        f"{origin} must return (model, loss_fn, inputs, targets[, regularization]), got "
        f"{type(obj).__name__}{f' of length {len(obj)}' if isinstance(obj, (tuple, list)) else ''}."
    )


def _config_target(path: Path) -> dict[str, Any]:
    from babysit.config import load_config
    from babysit.train.from_config import gradcheck_target

    return _unpack(gradcheck_target(load_config(path)), f"the config {path}")


def load_target(spec: str) -> dict[str, Any]:
    """Resolve TARGET into a dict with model, loss_fn, inputs, targets (and maybe regularization)."""
    if Path(spec).is_file():
        return _config_target(Path(spec))
    if spec.endswith((".toml", ".py", ".json")) or ("/" in spec and ":" not in spec):
        raise GradcheckError(f"no such file: {spec!r}. TARGET is a config file (TOML) or package.module:factory.")
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise GradcheckError(f"TARGET must look like package.module:factory (or a config file), got {spec!r}.")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # `babysit gradcheck mymodels:build` from the project folder
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise GradcheckError(f"cannot import {module_name!r} from TARGET {spec!r}: {e}.") from e
    factory = getattr(module, attr, None)
    if not callable(factory):
        names = sorted(n for n in vars(module) if not n.startswith("_") and callable(getattr(module, n)))
        raise GradcheckError(
            f"{module_name!r} has no callable {attr!r}; callables there: {', '.join(names) or 'none'}."
        )
    try:
        built = factory()
    except Exception as e:
        raise GradcheckError(f"the factory {spec} raised {type(e).__name__}: {e}") from e
    return _unpack(built, f"the factory {spec}")


def report_table(report: GradReport) -> Table:
    """The report as a rich table: one row per parameter and loss part (in place: with its seconds)."""
    table = Table(title=f"gradient check: {report.verdict}", title_style=_STYLE[report.verdict])
    timed = report.meta.get("method") == "in-place"
    for col, justify in (
        ("name", "left"),
        ("loss", "left"),
        ("shape", "left"),
        ("checked", "right"),
        ("max rel err", "right"),
        ("kinks", "right"),
        ("|grad| max", "right"),
        ("verdict", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    if timed:
        table.add_column("seconds", justify="right")
    for row, cells in zip(report.rows, report.table(), strict=True):
        extra = [f"{row.seconds:.3f}"] if timed else []
        table.add_row(*cells[:-1], f"[{_STYLE[row.verdict]}]{cells[-1]}[/]", *extra)
    return table


def gradcheck_command(
    target: Annotated[str, typer.Argument(help="package.module:factory returning (model, loss_fn, inputs, targets).")],
    samples: Annotated[int, typer.Option(help="Coordinates per tensor besides 2 random directions (-1: auto).")] = -1,
    examples: Annotated[int, typer.Option(help="How many examples of the batch the check uses.")] = 3,
    warmup_steps: Annotated[int, typer.Option(help="SGD steps on a copy before checking (L-G7).")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of every evaluation (dropout) and of the sampling.")] = 0,
    h: Annotated[float, typer.Option("--h", help="Centered-difference step; fallbacks are automatic.")] = 1e-5,
    layer: Annotated[
        str | None, typer.Option(help="Check only this layer (a name from model.named_modules()) where it sits.")
    ] = None,
    method: Annotated[
        str, typer.Option(help="auto, whole-model or in-place (auto: in place from tensors x parameters = 1e7).")
    ] = "auto",
    strict: Annotated[bool, typer.Option(help="Exit 1 on a suspicious gradient too.")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the report as JSON here.")] = None,
) -> None:
    """Compare analytic and numerical gradients of every parameter, data and regularization loss apart."""
    with friendly_errors():
        parts = load_target(target)
        report = run_gradcheck_target(
            **parts,
            samples=None if samples < 0 else samples,
            examples=examples,
            warmup_steps=warmup_steps,
            seed=seed,
            h=h,
            only=layer,
            method=method,
        )
    console.print(report_table(report))
    for check in report.failures[:10]:
        console.print(f"  {check.describe(report.meta.get('batch'))}", markup=False, highlight=False)
    for finding in report.findings:
        console.print(f"  {finding}", markup=False, highlight=False)
    console.print(
        f"checked in {report.meta.get('seconds', 0.0):.2f} s: {', '.join(report.how()[1:-1])}", highlight=False
    )
    if json_out is not None:
        json_out.write_text(json.dumps(report.to_dict(), indent=2))
        console.print(f"report written to {json_out}")
    bad = report.verdict == "wrong" or (strict and not report.ok)
    raise typer.Exit(EXIT_PROBLEM if bad else EXIT_OK)
