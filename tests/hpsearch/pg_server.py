"""The PostgreSQL server ``scripts/ensure_postgres.sh`` starts (``make test`` runs it), for the tests that need one.

Without a server the tests are skipped, with the reason, outside CI; under CI (``CI=true``) they fail: a CI run
that silently skipped them would pass without testing PostgreSQL at all.
"""

from __future__ import annotations

import os

import pytest

URL = os.environ.get("BABYSIT_TEST_POSTGRES_URL", "postgresql://babysit:babysit@127.0.0.1:54329/babysit_test")
SECRET_URL = os.environ.get(
    "BABYSIT_TEST_POSTGRES_SECRET_URL",
    "postgresql://babysit_secret:pg-S3cret-Zq9@127.0.0.1:54329/babysit_secret",
)


def require(url: str) -> str:
    """``url`` when a server answers there; else skip (fail under CI) saying how to start one."""
    try:
        import psycopg

        psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=5).close()
    except Exception as exc:
        shown = url.split("@")[-1]
        message = (f"no PostgreSQL server at ...@{shown} ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                   "run scripts/ensure_postgres.sh")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return url
