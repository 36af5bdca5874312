"""A factory planted in a study by someone who may write to it: importing it leaves a marker file, so a test can
tell whether babysit imported it (it must not)."""

import os
from pathlib import Path

Path(os.environ.get("BABYSIT_TRUST_MARKER", "/tmp/babysit-trust-evil-imported")).write_text("imported")


def build(input_shape, num_classes):  # pragma: no cover - never called
    raise AssertionError("a factory named by the study was called")
