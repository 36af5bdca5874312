"""``pysource``: real text every machine has, the Python standard library's own source, as next-character data.

A fixed list of modules is read from ``sysconfig.get_paths()["stdlib"]`` in a fixed order, up to ``max_chars``
characters, so the same Python gives the same text (another Python version gives slightly different text of
the same kind). Characters map to a fixed vocabulary: newline, the 95 printable ASCII characters, and one
"unknown" token for anything else (tabs, non-ASCII letters in docstrings), so V = 97 whatever the text and
an untrained model's loss is ``ln 97 = 4.57``. The text is cut into windows of ``block_size + 1`` characters:
X is a window's first ``block_size`` characters, y the same window shifted by one (the next character at
every position).
"""

from __future__ import annotations

import sysconfig
from pathlib import Path
from typing import Any

import numpy as np
import torch

from babysit.data._bundle import DataBundle
from babysit.errors import DataError

__all__ = ["MODULES", "VOCAB", "decode", "encode", "load_pysource", "stdlib_text"]

UNKNOWN = "\x00"
VOCAB = UNKNOWN + "\n" + "".join(chr(c) for c in range(32, 127))  # 97 characters; the id is the index
_INDEX = {c: i for i, c in enumerate(VOCAB)}
# modules present in every CPython since 3.8, prose and code of many styles; read in this order
MODULES = (
    "textwrap.py", "string.py", "heapq.py", "bisect.py", "functools.py", "fractions.py", "shlex.py",
    "fnmatch.py", "glob.py", "posixpath.py", "genericpath.py", "os.py", "shutil.py", "random.py",
    "statistics.py", "calendar.py", "colorsys.py", "copy.py", "difflib.py", "pprint.py", "queue.py",
    "sched.py", "tempfile.py", "tokenize.py", "weakref.py",
)


def stdlib_text(max_chars: int = 200_000) -> str:
    """The first ``max_chars`` characters of :data:`MODULES`, read from this Python's standard library.

    Raises:
        DataError: none of the modules can be read (a Python without its ``.py`` sources).
    """
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1000:
        raise DataError(f"pysource option max_chars must be an integer >= 1000, got max_chars={max_chars!r}.")
    folder = Path(sysconfig.get_paths()["stdlib"])
    parts, total = [], 0
    for name in MODULES:
        path = folder / name
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        parts.append(text[: max_chars - total])
        total += len(parts[-1])
        if total >= max_chars:
            break
    if not parts:
        raise DataError(f"no standard-library source found in {folder} (looked for {', '.join(MODULES[:3])}, ...); "
                        "this Python ships without its .py files. Use another data source.")
    return "".join(parts)


def encode(text: str) -> np.ndarray:
    """Characters to ids in :data:`VOCAB` (anything outside it becomes the unknown token 0)."""
    return np.fromiter((_INDEX.get(c, 0) for c in text), dtype=np.int64, count=len(text))


def decode(ids: np.ndarray | torch.Tensor | list[int]) -> str:
    """Ids back to characters (the unknown token shows as a replacement character)."""
    return "".join("\ufffd" if int(i) == 0 else VOCAB[int(i)] for i in ids)


def load_pysource(
    *, block_size: int = 64, max_chars: int = 200_000, normalize: str = "none", seed: int = 0,
    val_fraction: float = 0.1, test_fraction: float = 0.1, num_classes: int | None = None,
) -> DataBundle:
    """Next-character windows of the standard library's source: X and y are (N, ``block_size``) token ids.

    ``normalize`` is accepted so one config can switch sources, but token ids are never normalized.
    Windows do not overlap; a seeded permutation assigns them to train, val and test.

    Example:
        >>> b = load_pysource(max_chars=20_000)
        >>> b.input_shape, b.num_classes, b.sequence
        ((64,), 97, True)
    """
    del normalize  # token ids are categories, not measurements
    if num_classes is not None and num_classes != len(VOCAB):
        raise DataError(f"pysource has a vocabulary of {len(VOCAB)} characters (its classes), but num_classes="
                        f"{num_classes!r} was asked for; remove data.num_classes (or set it to {len(VOCAB)}).")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 2:
        raise DataError(f"pysource option block_size must be an integer >= 2, got block_size={block_size!r}.")
    ids = encode(stdlib_text(max_chars))
    windows = (len(ids) - 1) // block_size
    starts = np.arange(windows) * block_size
    X = np.stack([ids[s : s + block_size] for s in starts])  # (windows, T)
    y = np.stack([ids[s + 1 : s + block_size + 1] for s in starts])  # the next character at every position
    order = np.random.default_rng(seed).permutation(windows)
    n_val, n_test = round(val_fraction * windows), round(test_fraction * windows)
    if n_val < 1 or windows - n_val - n_test < 1:
        raise DataError(f"{windows} windows of {block_size} characters are too few to split with val_fraction="
                        f"{val_fraction} and test_fraction={test_fraction}; raise max_chars.")
    val, test, train = np.split(order, [n_val, n_val + n_test])
    splits = {"train": train, "val": val, **({"test": test} if n_test else {})}
    arrays: dict[str, Any] = {f"{k}_{s}": a[np.sort(idx)] for s, idx in splits.items() for k, a in (("X", X), ("y", y))}
    return DataBundle(
        **arrays, num_classes=len(VOCAB), sequence=True, name="pysource",
        description=f"{len(ids):,} characters of the Python standard library's source ({windows:,} windows of "
        f"{block_size}), {len(VOCAB)}-character vocabulary, next character at every position",
    )
