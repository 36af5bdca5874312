"""TOML configs: validation messages name the key, the bad value and what is allowed; overrides work."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from babysit.cli.demo import DEMO_CONFIG
from babysit.config import RunConfig, apply_overrides, config_from_dict, load_config
from babysit.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_examples_are_valid(path: Path) -> None:
    cfg = load_config(path)
    # every shipped example validates and names its run after itself or its `name`
    assert isinstance(cfg, RunConfig) and cfg.name


def test_demo_config_equals_example() -> None:
    example = tomllib.loads((EXAMPLES / "digits_mlp.toml").read_text())
    example.pop("name")
    demo = {k: v for k, v in DEMO_CONFIG.items() if k != "name"}
    # `babysit demo` trains exactly what examples/digits_mlp.toml describes
    assert config_from_dict(demo).model_dump() == config_from_dict(example).model_dump()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("[train]\nepochs = -2\n", r"`train\.epochs`.*greater than or equal to 1.*-2"),
        ("[model]\nactivation = 'relux'\n", r"`model\.activation`.*'relu', 'leaky_relu', 'tanh' or 'sigmoid'.*relux"),
        ("[train]\nloss = 'hinge'\n", r"`train\.loss`.*'softmax' or 'svm'.*hinge"),
        ("[trian]\nepochs = 3\n", r"unknown key `trian`.*Did you mean 'train'"),
        ("[model]\nhiden = [3]\n", r"unknown key `model\.hiden`.*allowed here:.*hidden.*Did you mean 'hidden'"),
        ("[optimizer]\nname = 'adma'\n", r"\[optimizer\].*adma.*adam"),
        ("[optimizer]\nname = 'adam'\nmomentum = 0.9\n", r"\[optimizer\].*momentum"),
        ("[optimizer]\nlr = -0.1\n", r"`optimizer\.lr`.*greater than 0.*-0\.1"),
        ("[schedule]\nname = 'step'\nfactor = 2.0\n", r"\[schedule\].*factor"),
        ("[data]\nnormalize = 'zscore'\n", r"`data\.normalize`.*'standardize', 'center' or 'none'"),
        ("[train\nepochs = 3\n", r"not valid TOML"),
    ],
)
def test_bad_config_messages(tmp_path: Path, text: str, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        load_config(_write(tmp_path, text))


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"does not exist.*examples"):
        load_config(tmp_path / "nope.toml")


def test_overrides_are_read_as_toml() -> None:
    raw = apply_overrides({}, ["optimizer.lr=3e-3", "model.hidden=[256, 128]", "optimizer.name=adam",
                               "train.compile=true"])
    # numbers, lists and booleans keep their types; a bare word is a string
    assert raw == {"optimizer": {"lr": 3e-3, "name": "adam"}, "model": {"hidden": [256, 128]},
                   "train": {"compile": True}}


def test_an_override_of_a_text_key_keeps_the_text_as_written(tmp_path: Path) -> None:
    """TOML reads 2024 as a number; a run's name, a CSV label column or a device is text whatever it looks like,
    while a number key given the same digits stays a number."""
    path = tmp_path / "run.toml"
    path.write_text("[train]\nepochs = 2\n")
    cfg = load_config(path, ["name=2024", "data.label=3", "optimizer.lr=2024", 'runs_dir="out"'])
    assert (cfg.name, cfg.data.label, cfg.optimizer.lr) == ("2024", "3", 2024.0)
    assert cfg.run_dir == Path("out") / "2024"


def test_every_built_in_sources_options_can_be_set_in_a_config(tmp_path: Path) -> None:
    """What data.load takes per source is a [data] key too: shapes32's size, pysource's windows, a CSV's separator;
    one meant for another source is refused by the loader, naming the options that source takes."""
    from babysit.errors import DataError
    from babysit.train.from_config import prepare

    shapes = prepare(load_config(_write(tmp_path, '[data]\nsource = "shapes32"\nper_class = 5\nnoise = 0.0\n')))
    assert len(shapes.bundle.y_train) + len(shapes.bundle.y_val) + len(shapes.bundle.y_test) == 6 * 5
    text = prepare(load_config(_write(tmp_path, '[data]\nsource = "pysource"\nblock_size = 16\nmax_chars = 4000\n'
                                                '[model]\nkind = "transformer"\nargs = { n_layer = 1, d_model = 16, '
                                                'n_head = 2 }\n')))
    assert text.bundle.X_train.shape[1] == 16
    table = tmp_path / "t.csv"
    table.write_text("a;b;y\n" + "".join(f"{i};{i % 3};{i % 2}\n" for i in range(40)))
    csv = prepare(load_config(_write(tmp_path, f'[data]\nsource = "{table}"\nlabel = "y"\ndelimiter = ";"\n')))
    assert csv.bundle.input_shape == (2,)
    with pytest.raises(DataError, match=r"unknown option for data source 'digits': 'per_class'"):
        prepare(load_config(_write(tmp_path, "[data]\nper_class = 5\n")))


def test_bad_override() -> None:
    with pytest.raises(ConfigError, match=r"not key=value"):
        apply_overrides({}, ["optimizer.lr"])


def test_config_name_defaults_to_file_stem(tmp_path: Path) -> None:
    path = tmp_path / "my_run.toml"
    path.write_text("[train]\nepochs = 2\n")
    # runs/<file stem>/ unless `name` is set
    assert load_config(path).run_dir == Path("runs") / "my_run"
