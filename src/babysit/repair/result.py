"""What the doctor did, kept as one record: ``doctor.json`` in its folder, the repaired config as TOML."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from babysit._io import write_text_atomic
from babysit.repair.attempt import Attempt

__all__ = ["DOCTOR_FILE", "DoctorResult", "claim_folder", "fixed_path"]

DOCTOR_FILE = "doctor.json"
# statuses that mean "exit 0": the config was repaired, or there was nothing to repair
GOOD = ("repaired", "nothing_to_repair")


@dataclass
class DoctorResult:
    """The doctor's session.

    Attributes:
        folder: the doctor's folder (one run folder per attempt inside it, ``doctor.json``, ``doctor.html``).
        status: ``nothing_to_repair``, ``repaired`` (fixes kept, no warning or error left), ``improved`` (fixes kept,
            problems remain), ``code_level`` (a fault only code can fix), ``not_repaired`` or ``interrupted``.
        original: the config as given; ``fixed``: with the kept fixes (the same when none was kept).
        attempts: every run, the first one the config as given.
        changes: the kept fixes, each with its finding, reason and verdict.
        code_level: faults only code can fix, each with its instruction (``fix`` None).
        remaining: the warning and error findings of the last kept run.
        checks: the gradient check's verdict and the sanity checks.
    """

    folder: str
    original: dict[str, Any]
    fixed: dict[str, Any]
    epochs: int = 0
    status: str = "running"
    attempts: list[Attempt] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    code_level: list[dict[str, Any]] = field(default_factory=list)
    remaining: list[dict[str, Any]] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Repaired, or nothing to repair."""
        return self.status in GOOD

    @property
    def before(self) -> Attempt | None:
        return self.attempts[0] if self.attempts else None

    @property
    def after(self) -> Attempt | None:
        """The last kept attempt (the baseline when no fix was kept)."""
        kept = [a for a in self.attempts if a.kept]
        return kept[-1] if kept else None

    @property
    def findings(self) -> list[dict[str, Any]]:
        """What was wrong: the loud findings of the first run and of the checks."""
        first = self.before.findings if self.before else []
        checks = self.checks.get("findings", [])
        return [f for f in (*checks, *first) if f.get("severity") in ("warning", "error")]

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in vars(self).items() if k != "attempts"}
        data["attempts"] = [a.to_dict() for a in self.attempts]
        return data

    def save(self) -> Path:
        """Write ``doctor.json`` into the folder."""
        path = Path(self.folder) / DOCTOR_FILE
        write_text_atomic(path, json.dumps(self.to_dict(), indent=1, default=str))
        return path

    @classmethod
    def load(cls, folder: str | Path) -> DoctorResult:
        data = json.loads((Path(folder) / DOCTOR_FILE).read_text(encoding="utf-8"))
        attempts = [Attempt(**a) for a in data.pop("attempts", [])]
        return cls(**data, attempts=attempts)

    def write_config(self, path: str | Path, base: dict[str, Any] | None = None) -> Path:
        """Write the repaired config as TOML (never over the config it was read from: pick another path).

        ``base``: the config file's own tables (as parsed); the kept fixes are set in them, so the written file
        differs from the input only where the doctor changed it. Without it the whole validated config is written.
        """
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if base is None:
            fixed = {k: v for k, v in self.fixed.items() if k != "redacted"}
        else:
            fixed = copy.deepcopy(base)
            for change in self.changes:
                _set_dotted(fixed, change["fix"])
        header = "".join(f"# babysit doctor: {c['code']} -> {_describe(c['fix'])}\n" for c in self.changes)
        write_text_atomic(target, header + tomli_w.dumps(fixed))
        return target


def _set_dotted(raw: dict[str, Any], fix: dict[str, Any]) -> None:
    for key, value in fix.items():
        node = raw
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value


def _describe(fix: dict[str, Any]) -> str:
    from babysit.repair.remedies import describe_fix

    return describe_fix(fix)


def fixed_path(config_path: str | Path) -> Path:
    """Where the repaired config goes by default: ``NAME.fixed.toml`` next to ``NAME.toml``."""
    p = Path(config_path)
    return p.with_name(f"{p.stem}.fixed.toml")


def claim_folder(folder: Path) -> Path:
    """A new, empty doctor folder: ``folder``, or ``folder-2``, ``folder-3``, ... when it is taken."""
    candidate, n = folder, 1
    while True:
        try:
            candidate.mkdir(parents=True, exist_ok=False)
            return candidate
        except FileExistsError:
            n += 1
            candidate = folder.with_name(f"{folder.name}-{n}")
