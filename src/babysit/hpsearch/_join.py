"""Workers that join a running search from anywhere (lecture H7): ``babysit search CONFIG --worker``."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from babysit.errors import ConfigError
from babysit.hpsearch._liveness import HEARTBEAT_INTERVAL_S
from babysit.hpsearch._objective import ConfigObjective
from babysit.hpsearch._pool import LocalWorkers
from babysit.hpsearch._resolve import objective_name, quiet_optuna, resolve_objective
from babysit.hpsearch._storage import default_url, display_url, local_study, resolve_url
from babysit.hpsearch._worker import WorkerSpec, work
from babysit.hpsearch.space import space_from_dict, space_to_dict
from babysit.train._interrupt import sigterm_as_interrupt

log = logging.getLogger("babysit")


def join_search(
    objective: Any,
    *,
    storage: str | None = None,
    search_dir: str | Path | None = None,
    study_name: str | None = None,
    workers: int = 1,
    idle_timeout_s: float | None = 600.0,
    heartbeat_interval: int = HEARTBEAT_INTERVAL_S,
    space: Mapping[str, Any] | None = None,
) -> int:
    """Join a running search as ``workers`` more worker processes (lecture H7: start them on any machine).

    The master (``babysit.search`` / ``babysit search CONFIG``) plans the stages; joined workers take trials
    of the current stage until the search is done, or until they waited ``idle_timeout_s`` for work.
    ``objective`` is this machine's copy of the config (or the callable); ``storage`` the study's URL
    (default: the journal file of the search folder). ``space`` is what this worker accepts from the study (default:
    the config's ``[search.space]``; a config objective needs one): a stage or trial that sets anything else is
    refused (``_trust``). Returns the number of trials run here (0 with several processes: they report nothing
    back). Ctrl-C and SIGTERM stop the worker(s); their running trials are marked interrupted.
    """
    objective, table = resolve_objective(objective)
    storage = storage or table.get("storage")
    name = study_name or objective_name(objective)
    folder = search_dir or table.get("search_dir")
    if folder is None and isinstance(objective, ConfigObjective):
        folder = Path(objective.base.runs_dir) / f"{objective.name}-search"
    folder = None if folder is None else Path(folder)
    if storage is None and (folder is None or local_study(folder) is None):
        raise ConfigError(
            "--worker needs the study's storage: --storage postgresql://user:password@host/db (or the folder "
            "of a local search with its study.journal)."
        )
    url = resolve_url(storage) if storage else default_url(folder)  # type: ignore[arg-type]
    declared = space if space is not None else table.get("space") or None
    if declared is None and isinstance(objective, ConfigObjective):
        raise ConfigError(
            "--worker needs the config's [search.space]: a worker trains only the parameters its own config "
            "declares (whatever the study says). Use the same config as the master."
        )
    spec = WorkerSpec(
        url=url, study_name=name, objective=objective, search_dir=None if folder is None else str(folder.resolve()),
        seed=os.getpid(), heartbeat_interval=heartbeat_interval, idle_timeout_s=idle_timeout_s, parallel=True,
        threads=max(1, (os.cpu_count() or 1) // workers),
        space=None if declared is None else space_to_dict(space_from_dict(declared)),
    )
    log.info("joining study %r in %s with %d worker(s)", name, display_url(url), workers)
    with quiet_optuna(), sigterm_as_interrupt():
        if workers == 1:
            return work(spec)
        pool = LocalWorkers(workers, spec)
        pool.start()
        pool.join()
    return 0
