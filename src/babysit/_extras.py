"""Optional features and the pip extra that installs each.

``pip install babysit`` brings what the monitor, ``fit`` and the gradient checks need (torch, numpy, rich).
Everything else is an extra (pyproject.toml): a feature used without its extra fails with one line naming the
missing package and the command that adds it, never with a bare ``ModuleNotFoundError`` from deep inside.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from babysit.errors import BabysitError

__all__ = ["EXTRAS", "MissingExtraError", "needs"]

# extra -> the top-level modules it installs (a test keeps these names in step with pyproject.toml)
EXTRAS: dict[str, tuple[str, ...]] = {
    "config": ("pydantic", "tomli_w", "tomli"),
    "digits": ("sklearn",),
    "report": ("matplotlib", "jinja2", "cycler"),
    "search": ("optuna", "sqlalchemy", "pydantic", "tomli_w", "tomli"),
    "postgres": ("psycopg", "optuna", "sqlalchemy", "pydantic", "tomli_w", "tomli"),
    "cli": ("typer", "click", "pydantic", "tomli_w", "tomli", "matplotlib", "jinja2", "optuna", "sqlalchemy",
            "sklearn"),
    "tensorboard": ("tensorboard",),
    "lightning": ("lightning",),
    "transformers": ("transformers", "accelerate"),
    "trackers": ("mlflow", "wandb"),
}


class MissingExtraError(BabysitError, ImportError):
    """A feature was used whose optional packages are not installed; the message holds the install command."""


def install_command(extra: str) -> str:
    """The command that installs ``extra``."""
    return f"pip install 'babysit[{extra}]'"


@contextmanager
def needs(extra: str, feature: str) -> Iterator[None]:
    """Turn the import of a missing package of ``extra`` inside the block into a :class:`MissingExtraError`.

    Example:
        >>> with needs("search", "babysit.search"):  # doctest: +SKIP
        ...     import optuna
    """
    try:
        yield
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in EXTRAS[extra]:
            raise  # not one of the extra's packages: a real bug, keep its traceback
        raise MissingExtraError(
            f"{feature} needs the package {missing!r}, which is not installed; install it with: "
            f"{install_command(extra)}"
        ) from exc
