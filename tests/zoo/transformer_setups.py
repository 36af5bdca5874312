"""The transformer fault zoo: a character-level GPT (``models.build("transformer")``) on the Python standard
library's source (``data.load("pysource")``), sick and healthy, each a second or two on one core.

Scores are ``(N, T, V)`` for targets ``(N, T)``: every position predicts the next character, and accuracy is per
character. Each set-up takes a seed (init, batch order; the text is the same).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from zoo_loop import Data, Knobs, Setup, train

from babysit import data, models
from babysit.history import History

BLOCK = 32
VOCAB = 97  # pysource: newline, 95 printable ASCII characters, one unknown
PAD = 0  # pysource's "unknown" id stands in for padding (it is rare in the text)
_TEXT: dict[int, data.DataBundle] = {}


def text(train_size: int | None = None) -> Data:
    """Windows of 32 characters: about 560 for training, 70 for validation (or the first ``train_size``)."""
    if BLOCK not in _TEXT:
        _TEXT[BLOCK] = data.load("pysource", block_size=BLOCK, max_chars=22_000, seed=0)
    b = _TEXT[BLOCK]
    X, y = b.X_train.long(), b.y_train.long()
    if train_size is not None:
        X, y = X[:train_size], y[:train_size]
    return Data(X, y, b.X_val.long(), b.y_val.long())


def padded_text(seed: int) -> Data:
    """Windows cut at a random length (4 to 20 characters) and filled up with ``PAD``, as a batch of lines of
    different lengths is; validation counts only the real characters."""
    d, gen = text(), torch.Generator().manual_seed(seed)

    def pad(X: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        real = torch.arange(BLOCK)[None, :] < torch.randint(4, 21, (len(X), 1), generator=gen)
        return X.masked_fill(~real, PAD), y.masked_fill(~real, PAD), real

    X, y, _ = pad(d.X, d.y)
    X_val, y_val, real = pad(d.X_val, d.y_val)
    return Data(X, y, X_val, y_val, val_mask=real)


def gpt(seed: int, **kw) -> nn.Module:
    kw.setdefault("n_layer", 2)
    kw.setdefault("d_model", 32)
    kw.setdefault("n_head", 4)
    return models.build("transformer", input_shape=(BLOCK,), num_classes=VOCAB, seed=seed, **kw)


def adam(model: nn.Module, lr: float, **kw) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=lr, **kw)


class _Probabilities(nn.Module):
    """A model whose forward ends in a softmax, trained with cross-entropy that applies its own."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, idx: Tensor) -> Tensor:
        return torch.softmax(self.inner(idx), dim=-1)


# --- sick set-ups -------------------------------------------------------------------------------------------
def adam_high_lr_no_warmup(seed: int) -> History:
    model = gpt(seed)
    return train(model, text(), adam(model, 0.1), Knobs(epochs=3), seed=seed)


def post_norm_deep_no_warmup(seed: int) -> History:
    model = gpt(seed, n_layer=6, prenorm=False)
    return train(model, text(), adam(model, 1e-2), Knobs(epochs=3), seed=seed)


def lr_too_small(seed: int) -> History:
    model = gpt(seed)
    return train(model, text(), adam(model, 1e-6), Knobs(epochs=3), seed=seed)


def weight_decay_swamps(seed: int) -> History:
    """AdamW with weight decay 30 on every tensor, layer norm gains and biases included."""
    model = gpt(seed)
    return train(model, text(), torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=30.0), Knobs(epochs=3),
                 seed=seed)


def overfit_small_train(seed: int) -> History:
    model = gpt(seed, d_model=64)
    return train(model, text(train_size=24), adam(model, 3e-3), Knobs(epochs=40, batch_size=8), seed=seed)


def softmax_before_loss(seed: int) -> History:
    model = _Probabilities(gpt(seed))
    return train(model, text(), adam(model, 3e-3), Knobs(epochs=2), seed=seed)


def zero_grad_missing(seed: int) -> History:
    model = gpt(seed)
    return train(model, text(), adam(model, 1e-3), Knobs(epochs=2, zero_grad=False), seed=seed)


def loss_on_padding(seed: int) -> History:
    """Padded lines, and a loss (and accuracy) that counts the padding: PAD after PAD is free to predict."""
    model = gpt(seed)
    return train(model, padded_text(seed), adam(model, 3e-3), Knobs(epochs=2), seed=seed)


# --- healthy set-ups ----------------------------------------------------------------------------------------
def healthy_adam_warmup(seed: int) -> History:
    model = gpt(seed)
    return train(model, text(), adam(model, 3e-3), Knobs(epochs=3, warmup_steps=20), seed=seed)


def healthy_noisy_small_batches(seed: int) -> History:
    model = gpt(seed)
    return train(model, text(), adam(model, 1e-3), Knobs(epochs=1, batch_size=4), seed=seed, every=16)


def healthy_slow_but_steady(seed: int) -> History:
    model = gpt(seed)
    return train(model, text(), adam(model, 5e-4), Knobs(epochs=4), seed=seed)


def healthy_padding_ignored(seed: int) -> History:
    model = gpt(seed)
    return train(model, padded_text(seed), adam(model, 3e-3), Knobs(epochs=2, ignore_index=PAD, warmup_steps=10),
                 seed=seed)


SICK = [
    Setup("adam_high_lr_no_warmup", adam_high_lr_no_warmup, "lr_too_high"),
    Setup("post_norm_deep_no_warmup", post_norm_deep_no_warmup, "vanishing_gradients", "post_norm"),
    Setup("lr_too_small", lr_too_small, "lr_too_low"),
    Setup("weight_decay_swamps", weight_decay_swamps, "regularization_dominates"),
    Setup("overfit_small_train", overfit_small_train, "overfitting"),
    Setup("softmax_before_loss", softmax_before_loss, "softmax_before_loss"),
    Setup("zero_grad_missing", zero_grad_missing, "gradient_accumulation"),
    Setup("loss_on_padding", loss_on_padding, "train_val_mismatch"),
]
HEALTHY = [
    Setup("healthy_adam_warmup", healthy_adam_warmup, None),
    Setup("healthy_noisy_small_batches", healthy_noisy_small_batches, None),
    Setup("healthy_slow_but_steady", healthy_slow_but_steady, None),
    Setup("healthy_padding_ignored", healthy_padding_ignored, None),
]
