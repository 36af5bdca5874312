"""The error gradcheck raises for inputs it cannot check."""

from __future__ import annotations

from babysit.errors import BabysitError

__all__ = ["GradcheckError"]


class GradcheckError(BabysitError, ValueError):
    """A function, model or input that cannot be gradient-checked (says what came in and the fix)."""
