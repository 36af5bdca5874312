"""N local worker processes for the master: started once, replaced when one dies, stopped at the end.

Processes are spawned (not forked): a forked copy of a process that already runs torch's thread pools can
hang. A worker that dies (killed, out of memory) loses only its trial: its heartbeat stops, the master
fails the trial and Optuna re-queues it; a new worker takes the dead one's place.

Workers are started with SIGINT ignored (inherited through ``exec``, so from their first instruction): Ctrl-C at
a terminal reaches every process of the group, and only the master acts on it; it stops the workers with
SIGTERM, on which each marks its trial ``interrupted`` and exits quietly.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from babysit.hpsearch._errors import SearchError
from babysit.hpsearch._worker import WorkerSpec, worker_main

log = logging.getLogger("babysit")
JOIN_S = 30.0  # how long stop() waits for workers to finish on their own before terminating them


class LocalWorkers:
    """A fixed number of spawned worker processes sharing one study."""

    def __init__(
        self, n: int, spec: WorkerSpec, *, max_restarts: int | None = None,
        on_start: Callable[[str], None] | None = None,
    ) -> None:
        self.n = n
        self.spec = spec
        self.on_start = on_start  # told each worker's host:pid as it starts
        self.max_restarts = 3 * n if max_restarts is None else max_restarts
        self.restarts = 0
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: list[Any] = []

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None]

    def start(self) -> None:
        """Start the workers (once; later calls keep the running ones)."""
        if not self._procs:
            self._procs = [self._spawn(i) for i in range(self.n)]

    def _spawn(self, index: int) -> Any:
        process = self._ctx.Process(
            target=worker_main,
            args=(replace(self.spec, index=index + self.n * self.restarts, parent_pid=os.getpid()),),
            name=f"babysit-worker-{index}", daemon=False,
        )
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            process.start()  # the child inherits SIGINT ignored
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        if self.on_start is not None:
            self.on_start(f"{socket.gethostname()}:{process.pid}")
        return process

    def check(self, *, done: bool) -> None:
        """Replace workers that died while the search still runs; give up after ``max_restarts``."""
        for i, process in enumerate(self._procs):
            if process.is_alive() or done:
                continue
            code = process.exitcode
            why = f"signal {-code} ({signal.Signals(-code).name})" if code and code < 0 else f"exit code {code}"
            if self.restarts >= self.max_restarts:
                raise SearchError(
                    f"worker processes keep dying ({self.restarts} replaced, the last with {why}); their own error "
                    "is printed above. A script that searches with workers > 1 must start the search under "
                    "`if __name__ == \"__main__\":` (workers are spawned and import the script). Run the same "
                    "search again to resume once the cause is fixed."
                )
            self.restarts += 1
            log.warning(
                "worker %d (pid %s) stopped with %s; its running trial is re-queued once its heartbeat is stale. "
                "Starting a new worker.", i, process.pid, why,
            )
            self._procs[i] = self._spawn(i)

    def join(self) -> None:
        """Wait until every worker has stopped on its own (joined workers: the search is done or idle)."""
        try:
            for process in self._procs:
                process.join()
        except KeyboardInterrupt:
            self.stop(wait=False)
            raise

    def stop(self, *, wait: bool) -> None:
        """Stop the workers: ``wait`` lets them finish (they stop once the study is done), else SIGTERM now."""
        for process in self._procs:
            if wait:
                process.join(timeout=JOIN_S)
        for process in self._procs:
            if process.is_alive():
                process.terminate()  # SIGTERM: the worker marks its trial interrupted and exits with 130
        for process in self._procs:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
