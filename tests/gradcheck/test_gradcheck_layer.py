"""check_module(..., only=layer): one layer checked where it sits, at the cost of the layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from babysit.gradcheck import GradcheckError, check_module
from babysit.testing import gradzoo_transformer as zt

FINE = ("ideal", "ok")


def _tiny(layers: int = 2, **kw) -> zt.Transformer:
    return zt.transformer("0.4M", d=32, layers=layers, heads=2, context=16, kernels=True, **kw)


def _count_calls(module: nn.Module) -> list[int]:
    calls = [0]
    module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls  # the check's deep copy keeps the hook: it counts the copy's calls too


def test_layer_rows_are_its_parameters_its_input_and_its_end_to_end() -> None:
    model = _tiny()
    report = check_module(model, zt.loss, *zt.batch(model), only=model.blocks[1])
    layer_params = [f"blocks.1.{n}" for n, _ in model.blocks[1].named_parameters()]
    names = [r.name for r in report.rows]
    # nothing outside the layer; the layer's input gradient and one direction over all of it at the end
    assert report.ok, str(report)
    assert [n for n in names if n in layer_params] == layer_params
    assert all(n.startswith("blocks.1") or n == "end-to-end" for n in names)
    assert names[-2:] == ["blocks.1:input", "end-to-end"]
    assert report.meta["layer"] == "blocks.1" and report.meta["parameters"] == sum(
        p.numel() for p in model.blocks[1].parameters()
    )


def test_layer_by_name_is_the_same_check() -> None:
    model = _tiny()
    x, y = zt.batch(model)
    by_module = check_module(model, zt.loss, x, y, only=model.blocks[1].mlp)
    by_name = check_module(model, zt.loss, x, y, only="blocks.1.mlp")
    assert [(r.name, r.max_rel_error) for r in by_module.rows] == [(r.name, r.max_rel_error) for r in by_name.rows]


def test_layer_with_a_planted_bug_is_caught_and_a_bug_elsewhere_is_not_its_concern() -> None:
    model = zt.plant(_tiny(), "blocks.1.attn.core", "attention", "last_query")
    x, y = zt.batch(model)
    here = check_module(model, zt.loss, x, y, only=model.blocks[1])
    there = check_module(model, zt.loss, x, y, only=model.blocks[0])
    # the attention core of blocks.1 is named; blocks.0 receives its real upstream gradient and is fine
    assert not here.ok and here.failures[0].name.startswith("blocks.1.attn.core:input")
    assert there.ok, str(there)


def test_layer_check_runs_the_rest_of_the_model_once() -> None:
    model = _tiny(layers=3)
    calls = [_count_calls(b) for b in model.blocks]
    report = check_module(model, zt.loss, *zt.batch(model), only=model.blocks[1])
    # one forward of the whole model records what the layer sees; every evaluation after runs the layer alone
    assert calls[0][0] == 1 and calls[2][0] == 1
    assert calls[1][0] >= 10 and report.meta["evaluations"] > 100


def test_layer_cost_grows_with_the_layer_not_with_the_model() -> None:
    x_short, y_short = zt.batch(_tiny(layers=1))
    evaluations = []
    for layers in (1, 4):
        model = _tiny(layers=layers)
        evaluations.append(check_module(model, zt.loss, x_short, y_short, only=model.blocks[0]).meta["evaluations"])
    # the same layer in a model four times as deep: the same evaluations, each of the layer alone
    assert evaluations[0] == evaluations[1]


def test_layer_without_parameters_checks_its_input() -> None:
    model = zt.plant(_tiny(), "blocks.0.mlp.act", "gelu", "tanh_backward")
    report = check_module(model, zt.loss, *zt.batch(model), only="blocks.0.mlp.act")
    assert [r.name for r in report.rows] == ["blocks.0.mlp.act:input"]
    assert not report.ok


def test_layer_errors_name_the_problem() -> None:
    model = _tiny()
    x, y = zt.batch(model)
    with pytest.raises(GradcheckError, match=r"similar names: .*blocks\.1\.mlp"):
        check_module(model, zt.loss, x, y, only="blocks.1.mpl")
    with pytest.raises(GradcheckError, match="layer inside the model"):
        check_module(model, zt.loss, x, y, only=nn.Linear(2, 2))
    unused = _tiny()
    unused.spare = nn.Linear(32, 32)
    with pytest.raises(GradcheckError, match="not called"):
        check_module(unused, zt.loss, x, y, only="spare")
    with pytest.raises(GradcheckError, match="module of the model or its name"):
        check_module(model, zt.loss, x, y, only=3)  # type: ignore[arg-type]


def test_layer_leaves_the_model_untouched() -> None:
    model = _tiny()
    x, y = zt.batch(model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    check_module(model, zt.loss, x, y, only=model.blocks[0])
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert next(model.parameters()).dtype == torch.float32
