"""Babysat training on the families: the language model through ``fit`` (per-token loss and accuracy), and a
Hugging Face GPT-2 through ``transformers.Trainer`` with babysit's callback (examples/hf_gpt2.py)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

import babysit
from babysit import data, models
from babysit.history import History

ROOT = Path(__file__).resolve().parents[2]


def _small_lm(b: data.DataBundle) -> torch.nn.Module:
    return models.build("transformer", input_shape=b.input_shape, num_classes=b.num_classes, n_layer=1,
                        d_model=32, n_head=4, seed=0)


def test_language_model_trains_per_token_under_the_monitor(tmp_path: Path) -> None:
    b = data.load("pysource", max_chars=40_000, block_size=32)
    h = babysit.fit(_small_lm(b), TensorDataset(*b.train), TensorDataset(*b.val), optimizer="adam", lr=3e-3,
                    epochs=2, batch_size=32, run_dir=tmp_path / "lm")
    losses = h.steps["loss"]
    # per token: the first loss is ln V, and the loss falls well below it
    assert abs(losses[0] - math.log(97)) < 0.1
    assert h.epochs[-1]["val_loss"] < math.log(97) - 1.5
    # accuracy is per token: a fraction, above the most frequent character's share (space, ~25% of code)
    assert all(0 <= e["train_acc"] <= 1 and 0 <= e["val_acc"] <= 1 for e in h.epochs)
    assert h.epochs[-1]["val_acc"] > 0.3
    # every layer was watched, attention and layer norms included, and the run folder holds the history
    names = {layer["name"] for layer in h.layers}
    assert {"blocks.0.attn.qkv", "blocks.0.ln1", "head"} <= names
    assert History.load(tmp_path / "lm").epochs == h.epochs


def test_language_model_trains_from_its_data_bundle() -> None:
    b = data.load("pysource", max_chars=20_000, block_size=32)
    h = babysit.fit(_small_lm(b), b, optimizer="adam", lr=3e-3, epochs=1, batch_size=32)
    assert h.epochs[0]["val_acc"] is not None and 0 <= h.epochs[0]["val_acc"] <= 1


@pytest.mark.slow
def test_hugging_face_gpt2_example_is_babysat(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    spec = importlib.util.spec_from_file_location("hf_gpt2", ROOT / "examples" / "hf_gpt2.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)  # type: ignore[union-attr]
    text = data.load("pysource", max_chars=20_000)
    grads, report = example.check(example.gpt2(text.num_classes, 64), text)
    # before training: GPT-2's attention, layer norms and tied embedding pass the gradient check, and its loss
    # starts at ln V and rises with the regularization strength
    assert grads.ok and any("attn.c_attn" in r.name for r in grads.rows if r.checked), str(grads)
    assert report.ok, str(report)
    trainer, callback = example.train(tmp_path / "hf", epochs=2, max_chars=40_000, every=5)
    h = History.load(tmp_path / "hf")
    # the Trainer's GPT-2 starts at ln V per token and learns; babysit saw every optimizer step
    assert len(h.steps["loss"]) == trainer.state.global_step
    assert abs(h.steps["loss"][0] - math.log(97)) < 0.3
    assert [e["epoch"] for e in h.epochs] == [1, 2]
    assert h.epochs[-1]["val_loss"] < h.epochs[0]["val_loss"] < math.log(97)
    assert 0.2 < h.epochs[-1]["val_acc"] <= 1  # eval_accuracy: per-token, from the example's compute_metrics
    # the monitor watched GPT-2's own layers, and the diagnosis ran at the end (its findings are saved)
    assert any("attn.c_attn" in layer["name"] for layer in h.layers)
    assert [f.code for f in h.findings] == [f.code for f in callback.findings]
    assert Path(babysit.report(tmp_path / "hf")).is_file()
