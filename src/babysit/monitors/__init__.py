"""The recording half of babysitting (lecture B4, B5): cheap numbers from inside the training loop.

:class:`Monitor` hooks every layer and the optimizer on sampled steps and fills a :class:`History`;
it never judges. The judging is :mod:`babysit.diagnose`'s.
"""

from __future__ import annotations

from babysit.monitors.monitor import DEFAULT_EVERY, Monitor

__all__ = ["DEFAULT_EVERY", "Monitor"]
