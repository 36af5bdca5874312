"""Helpers for messages that list the allowed names and guess the intended one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, allowed: Iterable[str]) -> str:
    """Return ' Did you mean X?' when a close match exists, else ''."""
    match = difflib.get_close_matches(name, list(allowed), n=1, cutoff=0.6)
    return f" Did you mean {match[0]!r}?" if match else ""


def unknown_name(kind: str, name: str, allowed: Iterable[str]) -> str:
    """The message for an unknown name: what came in, what exists, the closest match."""
    allowed = sorted(allowed)
    return f"unknown {kind} {name!r}; choose one of: {', '.join(allowed)}.{did_you_mean(name, allowed)}"
