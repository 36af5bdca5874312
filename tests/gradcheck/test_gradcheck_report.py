"""GradReport: the table, the failure lines, JSON, and the Finding record it carries."""

from __future__ import annotations

import json

import pytest
import torch

from babysit.findings import Finding
from babysit.gradcheck import GradReport, GradRow, check_function
from babysit.gradcheck._check import Check, format_index, hint
from babysit.testing import gradzoo


def _report(name: str) -> GradReport:
    case = next(c for c in gradzoo.cases() if c.name == name)
    return check_function(case.fn, *case.inputs())


def test_report_str_is_a_table_with_failures_and_findings() -> None:
    text = str(_report("matmul_transposed"))
    lines = text.splitlines()
    # a headline with the verdict, one row per input, then where it failed and the finding
    assert lines[0].startswith("gradient check: WRONG")
    assert "max rel err" in lines[1] and "input[0]" in lines[2] and "input[1]" in lines[3]
    assert "failures:" in text and "[error] gradient_mismatch" in text


def test_report_rows_have_the_promised_fields() -> None:
    report = _report("linear_one_column")
    row = report.rows[1]
    # name, checked, max_rel_error, kinks, verdict, and raw magnitudes
    assert isinstance(row, GradRow)
    assert (row.name, row.verdict, row.kinks) == ("input[1]", "wrong", 0)
    assert row.checked == len(row.checks) and row.max_rel_error == pytest.approx(0.5, rel=1e-6)
    assert row.grad_abs_max > 0 and row.shape == (4, 5)
    assert report.max_rel_error == max(r.max_rel_error for r in report.rows)
    assert report.ok is False and report.verdict == "wrong"


def test_report_to_dict_is_json_serialisable() -> None:
    for name in ("matmul_transposed", "relu_exact_zeros"):
        data = _report(name).to_dict()
        # strict JSON: no NaN/inf sneaks in
        text = json.dumps(data, allow_nan=False)
        assert json.loads(text)["verdict"] == data["verdict"]
    assert set(data) == {"ok", "verdict", "max_rel_error", "rows", "findings", "failures", "meta"}


def test_check_describe_reads_like_the_issue() -> None:
    c = Check("fc2.weight", "[3, 7]", 0.0213, 0.0107, 0.5, 1e-5, "wrong")
    # "fc2.weight[3, 7]: analytic 0.0213, numerical 0.0107, ratio 2.0"
    assert c.describe().startswith("fc2.weight[3, 7]: analytic 0.0213, numerical 0.0107, ratio 1.99")
    assert format_index(18, (4, 5)) == "[3, 3]" and format_index(0, ()) == "[]"


@pytest.mark.parametrize(
    ("ratio", "batch", "words"),
    [(2.0, None, "counted twice"), (0.5, None, "left out"), (-1.0, None, "sign"), (3.0, 3, "sum instead"),
     (1 / 3, 3, "divided by N"), (1.3, 3, "")],
)  # fmt: skip
def test_hint_names_the_usual_bug(ratio: float, batch: int | None, words: str) -> None:
    # the ratio suggests the cause
    assert words in hint(ratio, batch) if words else hint(ratio, batch) == ""


def test_gradient_tiny_is_flagged_with_raw_magnitudes() -> None:
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    report = check_function(lambda t: 1.0 + 1e-14 * t.sin(), x)
    # gradients ~1e-14 with outputs ~1: below resolution, flagged tiny (L-G6), not hidden, not wrong
    (finding,) = [f for f in report.findings if f.code == "gradient_tiny"]
    assert report.rows[0].tiny and report.ok
    assert finding.evidence["grad_abs_max"] < 1e-13 and finding.severity == "warning"


def test_finding_validates_and_serialises() -> None:
    f = Finding("gradient_mismatch", "error", "x is wrong", {"ratio": 2.0}, "fix the backward")
    # a frozen record with a to_dict and a one-line str
    assert f.to_dict()["evidence"] == {"ratio": 2.0}
    assert str(f).startswith("[error] gradient_mismatch: x is wrong")
    with pytest.raises(ValueError, match="severity"):
        Finding("gradient_mismatch", "fatal", "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="snake_case"):
        Finding("Gradient Mismatch", "error", "x")


def test_report_to_dict_carries_the_method_and_per_row_seconds() -> None:
    from torch import nn
    from torch.nn import functional as F

    from babysit.gradcheck import check_module

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    x, y = torch.randn(5, 4), torch.arange(5) % 3
    in_place = check_module(model, F.cross_entropy, x, y, method="in-place").to_dict()
    reference = check_function(torch.tanh, torch.randn(3, 4).bfloat16(), reference=torch.tanh).to_dict()
    # what the report page shows: how each check ran and what each row cost
    for data in (in_place, reference):
        json.dumps(data, allow_nan=False)
        assert all(isinstance(r["seconds"], float) and isinstance(r["module"], str) for r in data["rows"])
    assert in_place["meta"]["method"] == "in-place" and in_place["rows"][0]["module"] == "0"
    assert reference["meta"]["method"] == "reference" and reference["meta"]["dtype"] == "bfloat16"
    assert set(reference["meta"]["reference"]["rows"]) == {"output", "input[0]"}


def test_the_report_shows_the_mode_and_per_tensor_timings_of_an_in_place_check(tmp_path) -> None:
    from babysit.gradcheck import check_module
    from babysit.history import History
    from babysit.reporting.html import write_report
    from babysit.testing import gradzoo_transformer as zoo

    model = zoo.transformer("0.4M", context=8, seed=0)
    x, y = zoo.batch(model, 2)
    report = check_module(model, zoo.loss, x, y, method="in-place")
    history = History(status="completed", sections={"gradcheck": report.to_dict()})
    page = write_report(history, tmp_path).read_text(encoding="utf-8")
    # which method ran, and for every tensor the module it was checked in and how long it took
    assert "method in-place" in page and "checked in" in page
    assert report.ok and any(r["module"] for r in report.to_dict()["rows"])
