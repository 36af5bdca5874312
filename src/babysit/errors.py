"""Every error babysit raises on purpose.

    BabysitError                 base: catch this to catch them all
    ├── ConfigError              a TOML config or a --set override is invalid
    ├── DataError                data that cannot be trained on (shapes, labels, NaNs, empty splits)
    ├── ModelError               a model that cannot be built (unknown kind, bad factory, wrong output)
    ├── OptimError               an unknown update rule or schedule, or an invalid setting of one
    ├── CheckpointError          a run folder that cannot be resumed, or a file of one that is damaged
    └── StorageError             a search's study database that cannot be reached, logged in to or read

Each message says what was expected, what came in, and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "BabysitError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "ModelError",
    "OptimError",
    "StorageError",
]


class BabysitError(Exception):
    """Base class of the errors babysit raises on purpose."""


class ConfigError(BabysitError, ValueError):
    """A config file, a config key or a command-line override is invalid."""


class DataError(BabysitError, ValueError):
    """Data that cannot be trained on."""


class ModelError(BabysitError, ValueError):
    """A model that cannot be built or does not fit the data."""


class OptimError(BabysitError, ValueError):
    """An unknown or misconfigured update rule or learning-rate schedule."""


class CheckpointError(BabysitError, RuntimeError):
    """A run folder whose checkpoint is missing, unreadable or from another model."""


class StorageError(BabysitError, RuntimeError):
    """A study's database that cannot be reached, logged in to or read; the message never shows a password."""
