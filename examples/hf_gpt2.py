"""A Hugging Face GPT-2 learning the Python standard library's own source, babysat inside ``transformers.Trainer``.

The model is built from a small ``GPT2Config`` (2 layers, width 64: nothing is downloaded); the data is babysit's
``pysource`` (next-character windows of the standard library, vocabulary of 97 characters). Before training,
babysit checks the gradients (attention and layer norms included) and the loss at initialisation (ln 97) and
under regularization. The Trainer trains; ``BabysitTrainerCallback`` watches every layer on the same Monitor as
``babysit.fit``, diagnoses the run at its end and writes ``history.jsonl``; then the report is drawn.

Run:  python examples/hf_gpt2.py [RUN_DIR]        (needs pip install 'babysit[transformers]'; about a minute)
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import babysit
from babysit import losses, sanity
from babysit.integrations.transformers import BabysitTrainerCallback


class Logits(nn.Module):
    """GPT-2's next-token scores ``(N, T, V)`` as a plain tensor: the model babysit's checks call."""

    def __init__(self, gpt2: nn.Module) -> None:
        super().__init__()
        self.gpt2 = gpt2

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.gpt2(input_ids=input_ids).logits


def token_blocks(X: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """Windows as a Trainer batches them; GPT-2 shifts ``labels`` by one itself to score the next character."""
    return [{"input_ids": x, "labels": x} for x in X]


def token_accuracy(prediction: Any) -> dict[str, float]:
    """Per-token accuracy of the next character (``compute_metrics``; the Trainer reports ``eval_accuracy``)."""
    guess = prediction.predictions[:, :-1].argmax(-1)  # position t predicts token t + 1
    return {"accuracy": float(np.mean(guess == prediction.label_ids[:, 1:]))}


def gpt2(vocab_size: int, block_size: int) -> nn.Module:
    """A 2-layer GPT-2 of width 64, initialised from its config (seeded)."""
    import transformers

    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=vocab_size, n_positions=block_size, n_embd=64, n_layer=2, n_head=4,
                                     bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(config)


def check(model: nn.Module, data: babysit.data.DataBundle) -> tuple[Any, sanity.SanityReport]:
    """The lecture's checks before training: gradients (lecture G), initial loss and regularization (S1, S2)."""
    scores = Logits(model)
    X, y = data.train
    grads = babysit.gradcheck.check_module(scores, losses.softmax_loss, X[:2], y[:2])
    report = sanity.SanityReport([
        sanity.check_initial_loss(scores, losses.softmax_loss, X, y, num_classes=data.num_classes, kind="softmax"),
        sanity.check_regularization(scores, losses.softmax_loss, X, y),
    ])
    return grads, report


def train(run_dir: str | Path = "runs/hf_gpt2", *, epochs: int = 2, max_chars: int = 100_000, block_size: int = 64,
          lr: float = 3e-3, every: int = 10) -> tuple[Any, BabysitTrainerCallback]:
    """Train a small GPT-2 with ``transformers.Trainer`` and babysit's callback; return both."""
    import transformers

    data = babysit.data.load("pysource", block_size=block_size, max_chars=max_chars)
    model = gpt2(data.num_classes, block_size)
    args = transformers.TrainingArguments(
        output_dir=str(Path(run_dir) / "trainer"), num_train_epochs=epochs, learning_rate=lr,
        per_device_train_batch_size=32, per_device_eval_batch_size=64, eval_strategy="epoch",
        logging_strategy="epoch", save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True, seed=0,
    )
    callback = BabysitTrainerCallback(every=every, run_dir=run_dir)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=token_blocks(data.X_train),
                                   eval_dataset=token_blocks(data.X_val), compute_metrics=token_accuracy,
                                   callbacks=[callback])
    trainer.train()
    return trainer, callback


if __name__ == "__main__":
    run_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/hf_gpt2")
    text = babysit.data.load("pysource", max_chars=100_000)
    grads, report = check(gpt2(text.num_classes, 64), text)
    print(grads, report, sep="\n")
    trainer, callback = train(run_dir)
    h = callback.history
    print(f"first loss {h.steps['loss'][0]:.3f} (ln 97 = {math.log(97):.3f}), last epoch {h.epochs[-1]}")
    for finding in callback.findings:
        print(finding)
    print(f"report: {babysit.report(run_dir)}")
