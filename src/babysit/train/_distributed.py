"""``fit`` under ``torchrun``: DistributedDataParallel over an initialised process group (gloo on CPU, NCCL on GPU).

Each process trains on its share of every epoch's shuffled order (``TensorBatches`` takes every world-th
example); DDP averages the gradients, so the weights stay the same on every process. What is per process is
reduced once per epoch: the epoch's loss sums, correct counts and example counts (one ``all_reduce``), and
the Monitor's statistics at its readout (one ``all_gather``, see ``monitors/_store.py``); no step pays a
collective of babysit's. Only rank 0 writes the run folder, diagnoses and shows progress.
"""

from __future__ import annotations

import torch
from torch import nn

from babysit.train._tally import EpochTally


def process_group() -> tuple[int, int]:
    """``(rank, world size)`` of the initialised process group, or ``(0, 1)`` without one."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """The model inside DistributedDataParallel (hooks, the monitor and evaluation keep using ``model`` itself)."""
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def reduce_tally(tally: EpochTally, device: torch.device, world: int) -> None:
    """Turn this process's epoch sums into the whole epoch's: mean losses over processes, summed counts."""
    sums = torch.tensor([tally.sum_data, tally.sum_reg, float(tally.correct), float(tally.count)],
                        dtype=torch.float64, device=device)
    torch.distributed.all_reduce(sums)
    data, reg, correct, count = sums.tolist()
    tally.sum_data, tally.sum_reg = data / world, reg / world
    tally.correct, tally.count = round(correct), round(count)
