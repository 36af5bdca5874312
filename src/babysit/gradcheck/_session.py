"""The frame around every check: one seed before every evaluation (L-G9), one thread, nothing leaked.

* ``reseed()`` resets torch's (and optionally NumPy's) RNG to ``seed`` before each evaluation, so
  dropout draws the same mask at ``x + h``, ``x - h`` and in the analytic pass: it is checked rather
  than switched off.  The caller's RNG states are restored on exit.
* A check runs hundreds of tiny evaluations; intra-op threads only add synchronisation to them (and
  on a busy 2-core machine spin-waiting makes a 40 us forward pass take milliseconds), so torch runs
  single-threaded during the check and the caller's thread count is restored on exit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import numpy as np
import torch

__all__ = ["session"]


@contextmanager
def session(seed: int, tensors: Iterable[torch.Tensor] = (), *, numpy: bool = False) -> Iterator[Callable[[], None]]:
    """Yield ``reseed()``; restore RNG states and the thread count afterwards."""
    devices = sorted({t.device.index or 0 for t in tensors if t.device.type == "cuda"})
    np_state = np.random.get_state() if numpy else None
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=devices):
        try:
            torch.set_num_threads(1)

            def reseed() -> None:
                # the generators evaluations can draw from; torch.manual_seed would also queue a seed for
                # every CUDA device, which costs more than a small evaluation itself
                torch.default_generator.manual_seed(seed)
                for d in devices:
                    torch.cuda.default_generators[d].manual_seed(seed)
                if numpy:
                    np.random.seed(seed % 2**32)

            yield reseed
        finally:
            torch.set_num_threads(threads)
            if np_state is not None:
                np.random.set_state(np_state)
