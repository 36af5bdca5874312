"""Shared pieces of the integration tests: one shuffling order for every framework, the digits classifier
in the shape a ``transformers.Trainer`` takes, and a Trainer that keeps Trainer output out of the repo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset, Sampler


class FitOrder(Sampler[int]):
    """``fit``'s shuffling: one CPU generator seeded once, a fresh ``randperm`` per epoch.

    A DataLoader given ``shuffle=True, generator=g`` draws a worker seed from ``g`` before shuffling, so its
    order differs from ``fit``'s; with this sampler every framework sees the batches ``fit`` sees.
    """

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n, self.generator = n, torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        return iter(torch.randperm(self.n, generator=self.generator).tolist())


class DictDataset(Dataset):
    """``(X, y)`` as the dicts a ``transformers.Trainer`` batches: ``{"x": ..., "labels": ...}``."""

    def __init__(self, X: Tensor, y: Tensor) -> None:
        self.X, self.y = X, y

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"x": self.X[i], "labels": self.y[i]}


class ScoresWithLoss(nn.Module):
    """A classifier as a Trainer wants it: ``forward(x, labels)`` returns ``{"loss": ..., "logits": ...}``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor, labels: Tensor | None = None) -> dict[str, Tensor]:
        scores = self.net(x)
        out = {"logits": scores}
        if labels is not None:
            out["loss"] = F.cross_entropy(scores, labels)
        return out


def accuracy(prediction: Any) -> dict[str, float]:
    """``compute_metrics`` for the Trainer: the Trainer reports it as ``eval_accuracy``."""
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


def trainer_args(output_dir: Path, **overrides: Any):
    """TrainingArguments for a quiet CPU run that writes nothing but into ``output_dir`` (a tmp_path)."""
    from transformers import TrainingArguments

    settings: dict[str, Any] = dict(
        output_dir=str(output_dir), save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True,
        seed=0, logging_strategy="epoch", eval_strategy="epoch", dataloader_num_workers=0,
    )
    settings.update(overrides)
    return TrainingArguments(**settings)


def ordered_trainer(**kwargs: Any):
    """A ``transformers.Trainer`` that shuffles with :class:`FitOrder` (its own sampler reseeds per epoch)."""
    from transformers import Trainer

    class OrderedTrainer(Trainer):
        def _get_train_sampler(self, train_dataset=None):
            return FitOrder(len(train_dataset if train_dataset is not None else self.train_dataset))

    return OrderedTrainer(**kwargs)
