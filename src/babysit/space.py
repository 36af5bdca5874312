"""Search spaces for ``babysit.search``, in values on their own scale (lecture H2).

    babysit.space.loguniform(1e-6, 1e1)     # learning rate, regularization: uniform in log space
    babysit.space.uniform(0.0, 0.9)         # dropout, momentum: uniform on their own scale
    babysit.space.int(1, 4)                 # a count
    babysit.space.logint(16, 512)           # a width: each octave equally likely
    babysit.space.choice("relu", "tanh")    # one of a few options

Each takes ``limits=(lo, hi)``: hard bounds a widened range never crosses (e.g. ``(0, 1)`` for momentum).
"""

from __future__ import annotations

from babysit.hpsearch.space import Choice, Range, choice, int, logint, loguniform, uniform

__all__ = ["Choice", "Range", "choice", "int", "logint", "loguniform", "uniform"]
