"""Callbacks: attach your own behaviour to babysit.fit, next to babysit's own (early stopping, EMA, report).

    .venv/bin/python examples/callbacks.py             # 60 epochs at most on the digits data
    .venv/bin/python examples/callbacks.py --epochs 5

A callback overrides the hooks it needs (on_fit_start, on_epoch_start, on_step_end, on_validation_end,
on_epoch_end, on_exception, on_fit_end) and may keep state that resumes with the run (state_dict).
"""

from __future__ import annotations

import argparse

import torch

import babysit
from babysit.callbacks import EMA, EarlyStopping


class GradNormLogger(babysit.Callback):
    """The total gradient norm of every step, kept on the device and read once per epoch (no sync per step)."""

    def __init__(self) -> None:
        self.norms: list[torch.Tensor] = []

    def on_step_end(self, run, loss) -> None:
        grads = [p.grad for p in run.model.parameters() if p.grad is not None]
        self.norms.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))

    def on_epoch_end(self, run, record) -> None:
        record["grad_norm"] = float(torch.stack(self.norms).mean())  # lands in history.epochs and history.json
        self.norms.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--run-dir", default="runs/callbacks")
    args = parser.parse_args()

    digits = babysit.data.load("digits")
    model = babysit.models.build("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[128, 64], seed=0)
    history = babysit.fit(
        model, digits, optimizer="nesterov", lr=0.05, reg=1e-4, epochs=args.epochs, run_dir=args.run_dir,
        callbacks=[EarlyStopping("val_acc", patience=8), EMA(0.99), GradNormLogger()],
    )
    for e in history.epochs[-3:]:
        print(f"epoch {e['epoch']}: val acc {e['val_acc']:.3f}, EMA val acc {e['val_acc_ema']:.3f}, "
              f"grad norm {e['grad_norm']:.3f}")
    print(f"{history.status}: {history.stop_reason or 'all epochs done'}; run folder {history.run_dir}")


if __name__ == "__main__":
    main()
