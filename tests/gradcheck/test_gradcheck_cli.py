"""``babysit gradcheck TARGET`` on a tiny typer app: exit 0 / 1 / 2 and what it prints."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from babysit.cli import gradcheck as gradcheck_cli

FACTORIES = textwrap.dedent(
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Half(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x  # the 2 is missing

    class Squares(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return Half.apply(self.fc(x))

    def batch():
        torch.manual_seed(0)
        return torch.randn(6, 4), torch.randint(0, 3, (6,))

    def good():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)), F.cross_entropy, *batch()

    def with_reg():
        model, loss, x, y = good()
        return {"model": model, "loss_fn": loss, "inputs": x, "targets": y,
                "regularization": lambda m: 1e-3 * sum((p * p).sum() for p in m.parameters())}

    def bad():
        return Squares(), F.cross_entropy, *batch()

    def three():
        return 1, 2, 3

    def boom():
        raise RuntimeError("no data here")
    """
)


@pytest.fixture()
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    (tmp_path / "gc_cli_targets.py").write_text(FACTORIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """A stand-in for the babysit app."""

    gradcheck_cli.register(app)
    yield app
    sys.modules.pop("gc_cli_targets", None)


def test_cli_gradcheck_passes_and_prints_the_table(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["gradcheck", "gc_cli_targets:good"])
    # exit 0, one line per parameter
    assert result.exit_code == 0, result.output
    assert "gradient check: ideal" in result.output and "0.weight" in result.output and "2.bias" in result.output


def test_cli_gradcheck_exits_1_on_a_wrong_gradient_and_says_where(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["gradcheck", "gc_cli_targets:bad", "--json", str(out)])
    # exit 1; the failure line names the tensor, the index and the ratio; the JSON report is written
    assert result.exit_code == 1, result.output
    assert "fc.weight[" in result.output and "ratio 0.5" in result.output
    assert "[error] gradient_mismatch" in result.output
    assert json.loads(out.read_text())["verdict"] == "wrong"


def test_cli_gradcheck_accepts_a_dict_with_regularization(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["gradcheck", "gc_cli_targets:with_reg", "--samples", "2", "--warmup-steps", "2"])
    # data and regularization rows
    assert result.exit_code == 0, result.output
    assert "│ reg " in result.output and "│ data " in result.output


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("gc_cli_targets:three", "must return (model, loss_fn, inputs, targets"),
        ("gc_cli_targets:nope", "has no callable 'nope'"),
        ("gc_cli_targets:boom", "raised RuntimeError: no data here"),
        ("no_such_module_xyz:f", "cannot import 'no_such_module_xyz'"),
        ("just-a-word", "package.module:factory"),
    ],
)
def test_cli_gradcheck_bad_target_exits_2_with_a_clear_message(app: typer.Typer, target: str, message: str) -> None:
    result = CliRunner().invoke(app, ["gradcheck", target])
    # exit 2 and a message that says what came in and what is expected
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


def test_run_gradcheck_target_is_reusable() -> None:
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.manual_seed(0)
    report = gradcheck_cli.run_gradcheck_target(
        nn.Linear(3, 2), F.cross_entropy, torch.randn(4, 3), torch.tensor([0, 1, 0, 1]), samples=1
    )
    # the same entry point a config TARGET will use
    assert report.ok and [r.name for r in report.rows] == ["weight", "bias", "input"]


def test_cli_gradcheck_prints_the_method_and_the_time(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["gradcheck", "gc_cli_targets:good"])
    # the last line says how long the check took and how it ran
    assert result.exit_code == 0, result.output
    assert "checked in " in result.output and "whole-model" in result.output


def test_cli_gradcheck_layer_checks_one_layer_in_place(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "layer.json"
    result = CliRunner().invoke(app, ["gradcheck", "gc_cli_targets:good", "--layer", "2", "--json", str(out)])
    text = " ".join(result.output.split())
    # only layer 2's rows, with per-row seconds; the method line names the layer
    assert result.exit_code == 0, result.output
    assert "in-place (layer 2)" in text and "0.weight" not in text
    data = json.loads(out.read_text())
    assert [r["name"] for r in data["rows"]] == ["2.weight", "2.bias", "2:input", "end-to-end"]
    assert data["meta"]["method"] == "in-place" and data["meta"]["layer"] == "2"
    assert all("seconds" in row and "module" in row for row in data["rows"])


def test_cli_gradcheck_unknown_layer_exits_2(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["gradcheck", "gc_cli_targets:good", "--layer", "9"])
    assert result.exit_code == 2, result.output
    assert "no module named '9'" in " ".join(result.output.split())
