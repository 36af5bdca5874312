"""Workers on many machines (lecture H7): a real PostgreSQL server on loopback and 3 worker processes.

``scripts/ensure_postgres.sh`` (run by ``make test``) installs and starts the server. The test reads its URL
from ``BABYSIT_TEST_POSTGRES_URL`` (default below); without a server it is skipped, except under CI
(``CI=true``) where a missing server fails it.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import optuna
import pytest
from pg_server import URL, require

import babysit
from babysit.hpsearch import search_status
from babysit.hpsearch._storage import make_storage
from babysit.hpsearch.toys import Peak

# A worker "on another machine": joins the study by URL and name, waits for the master's stages.
JOIN = """
import sys
from babysit.hpsearch._join import join_search
from babysit.hpsearch.toys import Peak
if __name__ == "__main__":
    join_search(Peak(log={"lr": 1e-2}, sleep_s=0.03), storage=sys.argv[1], study_name=sys.argv[2],
                idle_timeout_s=90, heartbeat_interval=1)
"""


@pytest.fixture
def postgres_url() -> str:
    return require(URL)


def test_three_worker_processes_share_a_postgres_study(postgres_url: str, tmp_path: Path) -> None:
    name = f"pg-{uuid.uuid4().hex[:8]}"
    joined = subprocess.Popen([sys.executable, "-c", JOIN, postgres_url, name], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    try:
        result = babysit.search(
            Peak(log={"lr": 1e-2}, sleep_s=0.03), {"lr": babysit.space.loguniform(1e-4, 1.0)},
            budget_epochs=240, epochs=6, workers=2, storage=postgres_url, study_name=name, search_dir=tmp_path,
            heartbeat_interval=1, progress=False,
        )
        output, _ = joined.communicate(timeout=120)
        status = search_status(tmp_path, storage=postgres_url)
    finally:
        if joined.poll() is None:
            joined.kill()
        optuna.delete_study(study_name=name, storage=make_storage(postgres_url))
    # the joined worker stopped by itself once the master said the search was done
    assert joined.returncode == 0, output.decode()[-2000:]
    workers = Counter(t.worker.rsplit(":", 1)[1] for t in result.trials)
    # three processes took trials: the master's two local workers and the one that joined by URL
    assert len(workers) == 3 and workers[str(joined.pid)] > 0, workers
    assert all(t.state in ("complete", "pruned") for t in result.trials)
    assert result.epochs_used <= 240 and [s["status"] for s in result.stages] == ["done"] * 3
    # the master's view from the folder plus the URL: done, three workers, nothing running
    assert status["status"] == "done" and len(status["workers"]) == 3 and status["counts"].get("running", 0) == 0
    # the folder points at the study without its password
    assert "babysit:***@" in (tmp_path / "study.json").read_text()
