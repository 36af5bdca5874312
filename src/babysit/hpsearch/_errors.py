"""The search's own error: a search that cannot go on (a worker's fatal error, a folder holding another search)."""

from __future__ import annotations

from babysit.errors import BabysitError


class SearchError(BabysitError, RuntimeError):
    """A search that cannot start or go on; the message says why and what to do."""


class UntrustedStudyError(SearchError):
    """The study database holds something a search does not accept from it: a parameter, option or name the
    search did not declare, a path outside the search folder. The message names it; nothing was imported."""


class SearchInterrupted(KeyboardInterrupt):
    """A search stopped by Ctrl-C or SIGTERM after its clean-up: running trials marked ``interrupted`` (they run
    again when the search resumes), ``search.json`` rewritten with status ``interrupted``.

    Attributes:
        result: the search's :class:`~babysit.hpsearch.results.SearchResult` at the interrupt (None in memory).
        search_dir: the search folder (None in memory).
    """

    def __init__(self, message: str, *, result: object = None, search_dir: object = None) -> None:
        super().__init__(message)
        self.result = result
        self.search_dir = search_dir
