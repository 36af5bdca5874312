"""Checkpoints of a run folder: ``checkpoints/last.pt`` every epoch and ``checkpoints/best.pt``.

A checkpoint is a ``torch.save`` of plain state dicts and RNG states, written to a temporary file and
renamed, and read back with ``weights_only=True`` (no pickled code runs on load). It holds everything
needed to continue a run exactly where it stopped: model, optimizer, schedule, the global and the
shuffling RNG states, how many epochs and steps were done, and the state of every callback that keeps one
(momentum annealing, EMA, early stopping, ...).
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from babysit._io import StagedFile, link_atomic, stage_atomic, write_atomic
from babysit.errors import CheckpointError

CHECKPOINT_DIR = "checkpoints"
FORMAT_VERSION = 1


@dataclass
class TrainingState:
    """The objects a checkpoint saves and restores."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any | None
    generator: torch.Generator
    scaler: Any | None = None  # fp16's GradScaler


def checkpoint_path(run_dir: Path, which: str = "last") -> Path:
    """``<run_dir>/checkpoints/<which>.pt``."""
    return Path(run_dir) / CHECKPOINT_DIR / f"{which}.pt"


def save_checkpoint(path: Path, payload: dict[str, Any], *, sync_folder: bool = True) -> None:
    """Save a :func:`checkpoint_payload` (e.g. ``Run.checkpoint()``), atomically (``sync_folder``: see
    ``babysit._io.write_atomic``)."""
    stage_checkpoint(path, payload).commit(sync_folder=sync_folder)


def stage_checkpoint(path: Path, payload: dict[str, Any]) -> StagedFile:
    """Write a checkpoint beside ``path``, to be made durable and put in place by its ``commit()``."""
    return stage_atomic(path, lambda fh: torch.save(payload, fh))


def checkpoint_payload(state: TrainingState, *, epoch: int, num_steps: int, **extra: Any) -> dict[str, Any]:
    """What a checkpoint holds, as a dict of state dicts that still share the live tensors (copy it to keep it)."""
    return {
        "format": FORMAT_VERSION,
        "epoch": epoch,
        "num_steps": num_steps,
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "scheduler": None if state.scheduler is None else state.scheduler.state_dict(),
        "rng_torch": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "rng_shuffle": state.generator.get_state(),
        "scaler": None if state.scaler is None else state.scaler.state_dict(),
        **extra,
    }


def save_weights(path: Path, weights: dict[str, torch.Tensor], *, epoch: int, num_steps: int) -> None:
    """Save model weights alone (a search trial's ``best.pt``): enough for :func:`load_weights` and ensembles,
    not to resume training, and a fraction of the cost of a full checkpoint every epoch."""
    _write(path, {"format": FORMAT_VERSION, "epoch": epoch, "num_steps": num_steps, "model": weights})


def _write(path: Path, payload: dict[str, Any]) -> None:
    """``torch.save`` through a temporary file, fsync and a rename: a reader never sees half a checkpoint,
    and a crash leaves the old one (and no temporary file) behind."""
    write_atomic(path, lambda fh: torch.save(payload, fh))


def copy_checkpoint(source: Path, target: Path, *, sync_folder: bool = True) -> None:
    """Copy a checkpoint as atomically and durably as it was written (``best.pt`` from ``last.pt``): a hard link,
    since a checkpoint is only ever replaced by a new file, never written in place."""
    link_atomic(source, target, sync_folder=sync_folder)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``, with a clear error when it is missing or damaged."""
    if not path.is_file():
        raise CheckpointError(
            f"no checkpoint at {str(path)!r}: nothing to resume. Start without --resume to begin a new run."
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged files
        refused = _refused_globals(path, exc)
        if refused:
            raise CheckpointError(
                f"checkpoint {str(path)!r} holds values a weights-only load refuses ({', '.join(refused)}), most "
                "likely from a callback's state_dict() returning one (e.g. a numpy number or array) instead of plain "
                "floats, lists or tensors: make it return plain data (float(x), x.tolist()) before you resume; the "
                "checkpoint itself is intact, and if you trust it (your own run) torch.load(path, weights_only=False) "
                "reads it, to convert those values and torch.save it again."
            ) from exc
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be read, it is damaged ({exc}); delete it to start "
                              "over.") from exc
    if payload.get("format") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has format {payload.get('format')!r}, expected {FORMAT_VERSION}."
        )
    return payload


def _refused_globals(path: Path, exc: Exception) -> list[str]:
    """The classes and functions a weights-only load refused in ``path`` (``numpy._core.multiarray.scalar``), or
    [] when the file is damaged in another way."""
    if not isinstance(exc, pickle.UnpicklingError):
        return []
    find = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)  # torch >= 2.5
    if find is not None:
        try:
            return [str(name) for name in find(path)]
        except Exception:  # a damaged file: fall back to the names in torch's message
            pass
    return re.findall(r"Unsupported global: GLOBAL (\S+)", str(exc))


def restore_checkpoint(payload: dict[str, Any], state: TrainingState) -> None:
    """Load a checkpoint read by :func:`read_checkpoint` into ``state``."""
    try:
        state.model.load_state_dict(payload["model"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"the checkpoint is from a different model: {exc}. Resume with the config the run was started with."
        ) from exc
    state.optimizer.load_state_dict(payload["optimizer"])
    if state.scheduler is not None and payload["scheduler"] is not None:
        state.scheduler.load_state_dict(payload["scheduler"])
    torch.set_rng_state(payload["rng_torch"])
    if payload["rng_cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["rng_cuda"])
    state.generator.set_state(payload["rng_shuffle"])
    if state.scaler is not None and payload.get("scaler"):
        state.scaler.load_state_dict(payload["scaler"])


def load_weights(run_dir: str | Path, model: nn.Module, which: str = "best") -> dict[str, Any]:
    """Load the ``best`` (or ``last``) weights of a run folder into ``model``; return the checkpoint."""
    payload = read_checkpoint(checkpoint_path(Path(run_dir), which))
    model.load_state_dict(payload["model"])
    return payload
