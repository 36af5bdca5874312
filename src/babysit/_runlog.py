"""``RunLog``: a run's records on disk, append-only (``<run_dir>/history.jsonl``), one JSON object a line.

Saving a run appends only what is new since the last save (an epoch, the step buckets completed, the
monitor's new points, new histogram snapshots), so saving costs the same at epoch 10 and at epoch 10,000,
where rewriting one ``history.json`` grew with the square of the run's length.

Every save ends with a ``commit`` record and an fsync; a checkpoint stores the byte offset its commit
ends at. A crash can leave the log longer than the last checkpoint (records written, the checkpoint not):
resuming cuts the log back to the checkpoint's offset. A log shorter than its checkpoint, or whose commit
there names other counts, was damaged or replaced: resuming refuses it instead of guessing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from babysit._io import FILE_MODE, _jsonable, _restore_floats, fsync_all, fsync_dir, start_writeback
from babysit.errors import CheckpointError

LOG_FILE = "history.jsonl"


class RunLog:
    """The append-only log of one run folder."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LOG_FILE
        self.created = False  # the last append created the file (its folder's fsync makes its name durable)

    def exists(self) -> bool:
        return self.path.is_file()

    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def append(self, records: list[dict[str, Any]], *, sync: bool = True) -> int:
        """Append ``records`` (the last usually a commit) and fsync them; the log's size after them.
        ``sync=False`` starts the writes and leaves the fsync to the caller (:meth:`sync`, or one fsync of
        several files at once)."""
        text = "".join(json.dumps(_jsonable(r), separators=(",", ":"), default=str) + "\n" for r in records)
        self.created = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        try:
            data = memoryview(text.encode("utf-8"))
            while data:  # a short write (a disk filling up) goes on until the disk says why it cannot
                data = data[os.write(fd, data):]
            size = os.fstat(fd).st_size
            if not sync:
                start_writeback(fd)
        finally:
            os.close(fd)
        if sync:
            self.sync()
        return size

    def sync(self) -> None:
        """Make what was appended durable: the file's fsync, and its folder's when the append created it."""
        fsync_all([self.path])
        if self.created:
            fsync_dir(self.path.parent)

    def rewrite(self, records: list[dict[str, Any]]) -> int:
        """Replace the whole log by ``records`` atomically (a History saved afresh into this folder)."""
        from babysit._io import write_atomic

        text = "".join(json.dumps(_jsonable(r), separators=(",", ":"), default=str) + "\n" for r in records)
        write_atomic(self.path, lambda fh: fh.write(text.encode("utf-8")))
        return self.size()

    def records(self, upto: int | None = None) -> Iterator[dict[str, Any]]:
        """The records in order, up to byte ``upto``; a last line cut off by a crash is skipped."""
        with open(self.path, "rb") as fh:
            data = fh.read() if upto is None else fh.read(upto)
        for number, line in enumerate(data.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if data.endswith(line):  # the unfinished last line of a write that was cut off
                    return
                raise CheckpointError(f"{str(self.path)!r} line {number} is not a JSON record: the run log is "
                                      "damaged. `babysit export` can rescue the records before it.") from None
            if not isinstance(record, dict):
                raise CheckpointError(f"{str(self.path)!r} line {number} is not a record object: the run log is "
                                      "damaged.")
            yield _restore_floats(record)

    def cut_back(self, offset: int, *, epochs: int, num_steps: int) -> int:
        """Make the log end where a checkpoint's commit (at byte ``offset``, after ``epochs`` epochs and
        ``num_steps`` steps) ended it; returns how many bytes written after that commit were dropped."""
        size = self.size()
        if size < offset:
            raise CheckpointError(
                f"the checkpoint (epoch {epochs}, step {num_steps}) is ahead of the run log {str(self.path)!r}, "
                f"which ends at byte {size} where the checkpoint's commit ends at byte {offset}: the log was damaged "
                "or replaced. Nothing was continued; start a new run (or remove checkpoints/last.pt to read the "
                "log as it is)."
            )
        last = None
        for record in self.records(offset):
            if record.get("t") == "commit":
                last = record
        if last is None or (last.get("epochs"), last.get("num_steps")) != (epochs, num_steps):
            found = "no commit" if last is None else f"epoch {last.get('epochs')}, step {last.get('num_steps')}"
            raise CheckpointError(
                f"the run log {str(self.path)!r} does not end where the checkpoint says (checkpoint: epoch {epochs}, "
                f"step {num_steps}; log at byte {offset}: {found}): they belong to different runs or one was "
                "damaged. Nothing was continued."
            )
        if size > offset:
            with open(self.path, "r+b") as fh:
                fh.truncate(offset)
                fh.flush()
                os.fsync(fh.fileno())
        return size - offset
