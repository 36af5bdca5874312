"""``babysit doctor CONFIG``: diagnose, apply a config fix, rerun, verify; repeated; write the repaired config.

Exit codes: 0 repaired, or nothing to repair; 1 problems remain (a code-level fault, or no fix verifiably
helped); 2 bad input; 130 interrupted (the attempts so far are kept in the doctor's folder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from babysit.cli._common import EXIT_OK, EXIT_PROBLEM, console, friendly_errors, print_findings_lines

__all__ = ["doctor_command", "register"]


def register(app: typer.Typer) -> None:
    """Add the ``doctor`` command to ``app``."""
    app.command("doctor")(doctor_command)


def doctor_command(
    config: Path = typer.Argument(..., help="A TOML config, e.g. examples/digits_mlp.toml."),
    out: Path = typer.Option(None, "--out", help="Where the repaired config goes (default NAME.fixed.toml "
                                                "next to the config; never the config itself)."),
    budget: float = typer.Option(600.0, "--budget", help="Seconds for everything (checks and all runs)."),
    rounds: int = typer.Option(5, "--rounds", min=1, help="The most fixes tried."),
    epochs: int = typer.Option(8, "--epochs", min=1, help="Epochs of every short run."),
    overrides: list[str] = typer.Option([], "--set", help="Override a config key first: --set optimizer.lr=1."),
) -> None:
    """Find what is wrong with a training set-up, try config fixes, keep those that verifiably help."""
    from babysit.config import load_config
    from babysit.errors import ConfigError
    from babysit.repair import doctor, fixed_path
    from babysit.reporting.doctor_page import write_doctor_report

    with friendly_errors(interrupted="stopped; the attempts so far are kept in the doctor's folder."):
        cfg = load_config(config, overrides)
        target = out if out is not None else fixed_path(config)
        if target.resolve() == config.resolve():
            raise ConfigError(f"--out {target} is the config itself; the doctor never overwrites its input. "
                              "Pick another file, e.g. --out " + str(fixed_path(config)))
        result = doctor(cfg, epochs=epochs, rounds=rounds, budget_s=budget, on_progress=_printer())
        page = write_doctor_report(result)
    _summary(result, target, page, _raw_config(config, overrides))
    raise typer.Exit(EXIT_OK if result.ok else EXIT_PROBLEM)


def _printer() -> Any:
    """Print each event of the doctor as it happens (a spinner while a run trains)."""
    state: dict[str, Any] = {}

    def show(event: str, details: dict[str, Any]) -> None:
        if state.get("status") is not None:
            state.pop("status").stop()
        if event == "checks":
            state["status"] = console.status("gradient check and sanity checks ...")
        elif event == "checked":
            sanity = "pass" if details["sanity_ok"] else "[red]a check failed[/]"
            console.print(f"checks: gradient [bold]{details['gradcheck']}[/], sanity {sanity}")
        elif event == "lr_find":
            state["status"] = console.status("learning-rate range test ...")
        elif event == "lr_found":
            console.print(f"  range test: {escape(details['result'].reason)}", highlight=False)
        elif event == "attempt":
            what = f" for {details['code']}" if details.get("code") else ""
            console.print(f"[bold]run {details['index']}[/]: {escape(details['label'])}{what}", highlight=False)
            state["status"] = console.status("training ...")
        elif event == "done":
            _attempt_line(details["attempt"])
        if state.get("status") is not None:
            state["status"].start()

    return show


def _attempt_line(a: Any) -> None:
    acc = "–" if a.best_val_acc is None else f"{a.best_val_acc:.1%}"
    codes = ", ".join(a.loud_codes()) or "no warning"
    mark = "" if a.fix is None else ("; [green]kept[/]" if a.kept else "; [yellow]reverted[/]")
    console.print(f"  best val acc {acc}, {a.status}, {a.seconds:.0f} s; findings: {escape(codes)}{mark}",
                  highlight=False)
    if a.verdict:
        console.print(f"  [dim]{escape(a.verdict)}[/]", highlight=False)


def _raw_config(config: Path, overrides: list[str]) -> dict[str, Any]:
    """The config file's own tables with the --set overrides: the repaired file keeps the input's shape."""
    from babysit.config import apply_overrides, tomllib

    return apply_overrides(tomllib.loads(config.read_text(encoding="utf-8")), overrides)


def _summary(result: Any, target: Path, page: Path, base: dict[str, Any]) -> None:
    if result.code_level:
        console.print("[bold red]only the code can fix this[/] (no config change was tried, none would be honest):")
        for c in result.code_level:
            console.print(f"  [bold]{c['code']}[/]: {escape(c['message'])}", highlight=False)
            console.print(f"  [dim]fix in the code:[/] {escape(c['instruction'])}", highlight=False)
    elif result.status == "nothing_to_repair":
        console.print("[green]nothing to repair[/]: the short run found no warning and no error; config left as it is.")
    else:
        before, after = result.before, result.after
        console.print("[bold]what was wrong:[/]")
        print_findings_lines([f for f in before.findings if f.get("severity") in ("warning", "error")])
        for c in result.changes:
            console.print(f"[bold]changed[/] {escape(_fix_text(c['fix']))} for {c['code']}: "
                          f"{escape(c['verdict'])}", highlight=False)
        if after is not None and before is not None and result.changes:
            console.print(f"[bold]before/after[/]: best validation accuracy {_pct(before.best_val_acc)} -> "
                          f"{_pct(after.best_val_acc)} ({result.epochs} epochs each)")
        if result.changes:
            result.write_config(target, base=base)
            console.print(f"repaired config written to [bold]{escape(str(target))}[/]")
        if result.remaining:
            console.print("[yellow]problems remain:[/]")
            print_findings_lines(result.remaining)
    if result.note:
        console.print(f"[dim]{escape(result.note)}[/]")
    console.print(f"status [bold]{result.status}[/] in {result.seconds:.0f} s; attempts and the report "
                  f"[bold]{escape(str(page))}[/]")


def _fix_text(fix: dict[str, Any]) -> str:
    from babysit.repair.remedies import describe_fix

    return describe_fix(fix)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.1%}"


def print_fixes(findings: list[Any], run_dir: Path) -> None:
    """Under ``babysit diagnose``: each finding's config fix (from the run's ``config.toml``), or the code change
    when only code can fix it; nothing when the folder holds no config."""
    from babysit.config import load_config
    from babysit.errors import BabysitError
    from babysit.repair.remedies import describe_fix, remedy_for

    path = Path(run_dir) / "config.toml"
    if not findings or not path.is_file():
        return
    try:
        cfg = load_config(path)
    except (BabysitError, ValueError, OSError):  # a config this version cannot read: the findings still stand
        return
    for f in findings:
        remedy = remedy_for(f, cfg)
        if remedy is not None and remedy.fixes:
            console.print(f"[bold]{escape(f.code)}[/] config fix: {escape(describe_fix(remedy.fixes[0]))} "
                          "[dim](babysit doctor tries and verifies it)[/]", highlight=False)
        elif remedy is not None and remedy.instruction:
            console.print(f"[bold]{escape(f.code)}[/] only code can fix it: {escape(remedy.instruction)}",
                          highlight=False)
