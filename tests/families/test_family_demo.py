"""``babysit demo tabular|images|text`` and the example configs of the workload families."""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from babysit.cli import app
from babysit.cli._demo_families import family_configs
from babysit.config import config_from_dict, load_config
from babysit.history import History
from babysit.train.from_config import prepare

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
EXAMPLES = {"images": "shapes32_resnet.toml", "text": "pysource_transformer.toml", "tabular": "wine_mlp.toml"}


def _without(raw: dict, *keys: str) -> dict:
    return {k: v for k, v in raw.items() if k not in keys}


@pytest.mark.parametrize("family", sorted(EXAMPLES))
def test_example_config_trains_what_the_demo_trains(family: str, tmp_path: Path) -> None:
    example = tomllib.loads((ROOT / "examples" / EXAMPLES[family]).read_text())
    demo = family_configs(family, tmp_path)[0]
    # the same model, training and update rule (the tabular demo reads the CSV file it wrote, the example the table)
    for section in ("model", "train", "optimizer", "schedule"):
        assert example.get(section) == demo.get(section), section
    assert _without(example["data"], "source") == _without(demo["data"], "source")


def test_example_configs_build_their_model_on_their_data() -> None:
    expected = {"images": ((3, 32, 32), (2, 6)), "text": ((64,), (2, 64, 97)), "tabular": ((13,), (2, 3))}
    for family, name in EXAMPLES.items():
        prepared = prepare(load_config(ROOT / "examples" / name))
        shape, out = expected[family]
        assert prepared.bundle.input_shape == shape
        with torch.no_grad():
            assert tuple(prepared.model(prepared.bundle.X_train[:2]).shape) == out


def test_model_args_reach_the_builder() -> None:
    cfg = config_from_dict({"data": {"source": "shapes32"},
                            "model": {"kind": "resnet", "args": {"width": 4, "norm": False}}})
    model = prepare(cfg).model
    assert model.stem.out_channels == 4 and not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def test_demo_tabular_writes_the_csv_files_and_runs_every_stage(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "tabular", "--runs-dir", str(tmp_path), "--epochs", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    for table, classes in (("wine", 3), ("breast_cancer", 2)):
        with (tmp_path / "demo-tabular-data" / f"{table}.csv").open(newline="") as f:
            header = next(csv.reader(f))
        assert header[-1] == "label"
        h = History.load(tmp_path / f"demo-{table}")
        # gradient check, sanity checks, two epochs of training and the report, all in the run folder
        assert len(h.epochs) == 2 and h.best_val_acc > 1 / classes
        assert h.sections["gradcheck"]["ok"] and h.sections["sanity"]["ok"]
        assert (tmp_path / f"demo-{table}" / "report.html").is_file()


def test_demo_of_an_unknown_family_names_the_families(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "audio", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "digits, tabular, images, text" in result.output


@pytest.mark.slow
def test_demo_text_runs_every_stage_on_the_language_model(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "text", "--runs-dir", str(tmp_path), "--epochs", "1", "--no-progress"])
    assert result.exit_code == 0, result.output
    h = History.load(tmp_path / "demo-text")
    # the gradient check passed on attention and layer norms, the three sanity checks passed (initial loss ln 97)
    assert h.sections["gradcheck"]["ok"] and h.sections["sanity"]["ok"]
    initial = next(c for c in h.sections["sanity"]["checks"] if c["name"] == "initial_loss")
    assert abs(initial["observed"] - math.log(97)) < 0.1
    # one epoch of per-token training already beats guessing, and the model's text is printed
    assert h.epochs[0]["val_loss"] < math.log(97) - 1 and 0 < h.epochs[0]["val_acc"] < 1
    assert "continues 'def '" in result.output and (tmp_path / "demo-text" / "report.html").is_file()


@pytest.mark.slow
def test_demo_images_runs_every_stage_on_the_resnet(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "images", "--runs-dir", str(tmp_path), "--epochs", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    h = History.load(tmp_path / "demo-images")
    assert h.sections["gradcheck"]["ok"] and h.sections["sanity"]["ok"]
    # batch norm layers were watched, and two epochs lift the six-shape accuracy above chance (1/6)
    assert any(layer["name"].endswith("bn1") for layer in h.layers)
    assert len(h.epochs) == 2 and h.best_val_acc > 0.25
    assert (tmp_path / "demo-images" / "report.html").is_file()
