"""``babysit diagnose RUN_DIR``: judge a finished (or running) run from its run log and print the findings.

Exit codes: 0 no error finding; 1 at least one error finding; 2 not a run folder.

``--verbose`` also lists the rules that were skipped because a quantity they need was not recorded
(``fit(monitor={"skip": ["dead_fraction"]})``, ``monitor=False``), each with what it needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from babysit.cli._common import EXIT_OK, EXIT_PROBLEM, cli_wording, console, friendly_errors
from babysit.cli._help import flag
from babysit.cli.doctor import print_fixes

__all__ = ["diagnose_command", "print_findings", "print_skipped", "register"]

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def register(app: typer.Typer) -> None:
    """Add the ``diagnose`` command to ``app``."""
    app.command("diagnose")(diagnose_command)


def _field(finding: Any, name: str) -> Any:
    value = finding.get(name) if isinstance(finding, dict) else getattr(finding, name)
    return cli_wording(value) if isinstance(value, str) else value


def print_findings(findings: Sequence[Any], out: Console = console, title: str = "diagnosis") -> None:
    """Print findings (Finding objects or their dicts) as a table: severity, code, what was seen, what to try."""
    if not findings:
        out.print(f"[green]{title}: no findings: nothing looks wrong[/]")
        return
    table = Table(title=title, show_lines=True)
    table.add_column("severity")
    table.add_column("code")
    table.add_column("what babysit saw", ratio=3)
    table.add_column("what to try", ratio=2)
    for f in findings:
        severity = _field(f, "severity")
        table.add_row(f"[{_STYLE.get(severity, '')}]{severity}[/]", _field(f, "code"), _field(f, "message"),
                      _field(f, "suggestion") or "")
    out.print(table)


def print_skipped(skipped: Mapping[str, Sequence[str]], out: Console = console) -> None:
    """Print the rules that were not run and the quantities each needs (nothing when every rule ran)."""
    if not skipped:
        out.print("[dim]every rule ran: each had the quantities it needs[/]")
        return
    table = Table(title="rules skipped (what they need was not recorded)")
    table.add_column("rule")
    table.add_column("needs")
    for code, needs in skipped.items():
        table.add_row(code, ", ".join(needs))
    out.print(table)


def diagnose_command(
    run_dir: Path = typer.Argument(..., help="A run folder holding history.jsonl (e.g. runs/digits_mlp)."),
    rules: list[str] = typer.Option([], "--rule", help="Run only this rule (repeatable), e.g. --rule dead_units."),
    save: bool = flag(False, "save", "Store the findings back into the run log."),
    verbose: bool = typer.Option(False, "--verbose", "-v",
                                 help="Also list the rules skipped for want of a quantity, and what each needs."),
) -> None:
    """Print what went wrong in a training run and what to try, from its recorded history."""
    from babysit.diagnose import run_rules
    from babysit.history import History

    with friendly_errors():
        history = History.load(run_dir)
        diagnosis = run_rules(history, rules=list(rules) or None)
    findings = diagnosis.findings
    print_findings(findings, title=f"diagnosis of {run_dir}")
    print_fixes(findings, run_dir)  # finding.fix from the run's config.toml
    if verbose:
        print_skipped(diagnosis.skipped)
    elif diagnosis.skipped:
        count = len(diagnosis.skipped)
        console.print(f"[dim]{count} rule{'s' if count != 1 else ''} skipped for want of a quantity "
                      "(--verbose lists them)[/]")
    if save:
        history.findings = [f.to_dict() for f in findings]
        history.save()
        console.print(f"findings saved in [bold]{run_dir / 'history.jsonl'}[/]")
    raise typer.Exit(EXIT_PROBLEM if any(f.severity == "error" for f in findings) else EXIT_OK)
