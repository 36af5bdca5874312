"""The search's own error: a search that cannot go on (a worker's fatal error, a folder holding another search)."""

from __future__ import annotations

from babysit.errors import BabysitError


class SearchError(BabysitError, RuntimeError):
    """A search that cannot start or go on; the message says why and what to do."""
