"""A representative part of the doctor's zoo (bench/doctor.py runs all of it over three seeds): sick configs on
digits and CSV tables repaired to within 2 points of their healthy twin, code-level faults named and nothing
changed, healthy configs returned unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
from doctor_zoo import BY_NAME, CODE, HEALTHY, SICK, run_entry, write_tables

PICKED = ["digits_small_batch_high_rate", "digits_tiny_init_deep_tanh", "cancer_reg_far_too_strong",
          "wine_raw_inputs", "digits_dropout_at_eval", "digits_shuffled_labels", "digits_adam", "wine_nesterov"]


@pytest.fixture(scope="module")
def csv_dir(tmp_path_factory) -> Path:
    return write_tables(tmp_path_factory.mktemp("tables"))


def test_zoo_is_big_enough() -> None:
    # at least 12 config-curable sick entries on digits and on tables, 4 code-level faults, 5 healthy configs
    assert len(SICK) >= 12 and {e.base["data"]["source"] for e in SICK} >= {"digits", "{csv}/breast_cancer.csv"}
    assert len({e.expected[0] for e in CODE}) >= 4 and len(HEALTHY) >= 5


@pytest.mark.parametrize("name", PICKED)
def test_zoo_entry_comes_out_as_it_should(name: str, csv_dir: Path, tmp_path: Path) -> None:
    entry = BY_NAME[name]
    row = run_entry(entry, seed=1, csv_dir=csv_dir, work=tmp_path)
    # repaired: within 2 points of the healthy twin; code-level: named with fix None, no change; healthy: unchanged
    assert row["ok"], row
    if entry.kind == "config":
        assert row["changes"] and set(row["named"]) & set(entry.expected), row
    elif entry.kind == "code":
        assert set(row["code_level"]) & set(entry.expected) and not row["changes"], row
    else:
        assert row["status"] == "nothing_to_repair", row
