"""Where a trial leaves its training state for the longer trial that continues it (successive halving).

Each longer stage of ``coarse_to_fine`` first trains the best settings of the stage before. Continuing
those trials from where they stopped, instead of training them again from epoch 1, spends only the new
epochs: what successive halving and Hyperband do with their survivors. So every trial of a stage that has
a next stage keeps its final state: in its trial folder as ``checkpoints/state.pt`` (a worker on another
machine reads it there through a shared file system; without one it trains the setting from scratch), or
in this process's memory for a search without a folder. The master drops the states nobody will continue.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger("babysit")
STATE_FILE = Path("checkpoints") / "state.pt"


class TrialStates:
    """Trial number -> the state its objective kept with ``trial.keep_state`` (in trial folders, or in memory).

    Args:
        search_dir: the search folder; trial folders below it hold the states.
        memory: without a folder, keep states in this process's memory. Only for the master's own in-process
            worker: the master drops them as stages end (a worker that joined without a folder keeps none, or
            its memory would grow with every trial).
    """

    def __init__(self, search_dir: str | Path | None, *, memory: bool = False) -> None:
        self.search_dir = None if search_dir is None else Path(search_dir)
        self.memory = memory and self.search_dir is None
        self._memory: dict[int, Any] = {}

    def __getstate__(self) -> dict[str, Any]:  # sent to worker processes: the folder, never the memory
        return {"search_dir": self.search_dir, "memory": False, "_memory": {}}

    def put(self, number: int, run_dir: Path | None, state: Any) -> None:
        """Keep ``state`` of trial ``number`` (in ``run_dir`` when the search has folders)."""
        if self.search_dir is None or run_dir is None:
            if self.memory:
                self._memory[number] = state
            return
        path = Path(run_dir) / STATE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(path)

    def get(self, number: int, run_dir: str | None) -> Any | None:
        """The state trial ``number`` kept (``run_dir``: its folder, relative to the search folder), or None."""
        if number in self._memory:
            return self._memory[number]
        path = self._path(run_dir)
        if path is None or not path.is_file():
            return None
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a damaged or foreign file: the setting is trained from scratch instead
            log.warning("cannot read %s (%s); trial %d's setting is trained from scratch", path, exc, number)
            return None

    def drop(self, number: int, run_dir: str | None) -> None:
        """Forget the state of trial ``number``: no trial will continue it."""
        self._memory.pop(number, None)
        path = self._path(run_dir)
        if path is not None:
            path.unlink(missing_ok=True)

    def _path(self, run_dir: str | None) -> Path | None:
        """The state file of a trial folder the study names: only ``trials/<name>`` inside the search folder."""
        from babysit.hpsearch._errors import UntrustedStudyError
        from babysit.hpsearch._trust import trial_folder

        try:
            folder = trial_folder(self.search_dir, run_dir)
        except UntrustedStudyError as exc:
            log.warning("%s", exc)
            return None
        return None if folder is None else folder / STATE_FILE
