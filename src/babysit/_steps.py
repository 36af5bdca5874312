"""``StepColumns``: the per-step values of a run (loss, learning rate, epoch) at bounded resolution.

A run of a million steps cannot keep a million points in memory and on disk, yet a loss spike at step
700,001 must not vanish from the curve. So the columns keep every step while there are at most
``capacity`` points; beyond that neighbouring points merge in pairs and every later point stands for
twice as many steps (the stride ``k`` doubles). A point keeps the values at its bucket's last step plus the
lowest and highest loss in its bucket, so no spike is lost, and memory stays ``O(capacity)`` however long
the run.

A run log stores the points as they are kept (new points, or all of them again after a merge), plus the
bucket being filled at each commit, so replaying it gives exactly the in-memory state.
"""

from __future__ import annotations

from typing import Any

COLUMNS = ("step", "epoch", "loss", "lr", "loss_min", "loss_max")
CAPACITY = 4096  # points kept in memory (a power of two: pairs merge evenly)


class StepColumns:
    """Per-step columns with doubling stride: ``append`` every step, read ``columns[name]`` lists.

    Attributes:
        columns: the kept points, one list per name in ``COLUMNS`` (``columns["step"]`` is each point's last step).
        num_steps: how many steps were appended in all.
        stride: how many steps a new point stands for (1 until the first merge).
    """

    def __init__(self, capacity: int = CAPACITY) -> None:
        if capacity < 2 or capacity & (capacity - 1):
            raise ValueError(f"capacity must be a power of two >= 2, got {capacity}")
        self.capacity = capacity
        self.columns: dict[str, list[Any]] = {name: [] for name in COLUMNS}
        self.num_steps = 0
        self.stride = 1
        self._open: list[Any] | None = None  # the bucket being filled: [step, epoch, loss, lr, min, max, count]
        self.merges = 0  # how often the points merged (a run log then stores them anew)

    def append(self, step: int, epoch: float | None, loss: float, lr: float | None) -> None:
        """Add one step's values (steps are consecutive, from 1)."""
        self.num_steps = step
        bucket = self._open
        low = high = loss
        if bucket is not None:
            low, high = _min(bucket[4], loss), _max(bucket[5], loss)
        count = 1 if bucket is None else bucket[6] + 1
        self._open = [step, epoch, loss, lr, low, high, count]
        if count >= self.stride:
            self._close()

    def extend(self, steps: list[int], epochs: list[Any], losses: list[float], lrs: list[Any]) -> None:
        """``append`` each step; while every step is its own point and they all fit, column by column at once
        (what the per-step appends would give: fit drains every epoch through here)."""
        cols = self.columns
        if self.stride == 1 and self._open is None and steps and len(cols["step"]) + len(steps) <= self.capacity:
            cols["step"].extend(steps)
            cols["epoch"].extend(epochs)
            cols["loss"].extend(losses)
            cols["lr"].extend(lrs)
            cols["loss_min"].extend(losses)
            cols["loss_max"].extend(losses)
            self.num_steps = steps[-1]
            return
        for s, e, x, r in zip(steps, epochs, losses, lrs):
            self.append(s, e, x, r)

    def add_points(self, points: dict[str, list[Any]]) -> None:
        """Append kept points column by column (a replayed run log; they were stored as they were kept)."""
        for name in COLUMNS:
            self.columns[name].extend(points.get(name) or points["loss"])  # old logs: extremes = the loss
        if self.columns["step"]:
            self.num_steps = max(self.num_steps, int(self.columns["step"][-1]))

    def replace(self, points: dict[str, list[Any]], stride: int) -> None:
        """Replace every point (a run log's snapshot after a merge)."""
        for name in COLUMNS:
            self.columns[name][:] = list(points.get(name) or points["loss"])
        self.stride = stride

    def _close(self) -> None:
        point = self._open[:6]  # type: ignore[index]
        self._open = None
        self._push(point)

    def _push(self, point: list[Any]) -> None:
        for name, value in zip(COLUMNS, point):
            self.columns[name].append(value)
        if len(self.columns["step"]) > self.capacity:
            self._merge()

    def _merge(self) -> None:
        """Merge neighbouring points in pairs: each keeps the later point's values and both extremes."""
        cols = self.columns
        n = len(cols["step"]) // 2 * 2
        for name in ("step", "epoch", "loss", "lr"):
            cols[name][: n // 2] = cols[name][1:n:2]
            del cols[name][n // 2 : n]
        for name, pick in (("loss_min", _min), ("loss_max", _max)):
            col = cols[name]
            col[: n // 2] = [pick(a, b) for a, b in zip(col[0:n:2], col[1:n:2])]
            del col[n // 2 : n]
        self.stride *= 2
        self.merges += 1

    # --- saving and restoring ---------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """What a checkpoint needs to continue exactly: the stride and the bucket being filled."""
        return {"stride": self.stride, "open": self._open, "num_steps": self.num_steps}

    def load_state(self, state: dict[str, Any]) -> None:
        self.stride, self._open, self.num_steps = int(state["stride"]), state["open"], int(state["num_steps"])

    def truncate(self, num_steps: int) -> None:
        """Forget every point after step ``num_steps`` (an in-memory resume; points are whole buckets)."""
        keep = sum(1 for s in self.columns["step"] if s <= num_steps)
        for col in self.columns.values():
            del col[keep:]
        if self._open is not None and self._open[0] > num_steps:
            self._open = None
        self.num_steps = min(self.num_steps, num_steps)


def _min(a: float, b: float) -> float:
    """The lower of two losses; a NaN wins, so a bucket that held one shows it in both extremes."""
    return b if b != b or (a == a and b < a) else a


def _max(a: float, b: float) -> float:
    return b if b != b or (a == a and b > a) else a
