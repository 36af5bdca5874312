"""What a search takes from its study database: data, checked against the search it was started with.

A study is shared: a PostgreSQL database several people can write to, a ``study.journal`` in a shared folder. Whoever
can write there must not be able to make a master or a worker import code or touch files. So:

- A stage read from the study (its ranges, trial length, sampler, pruner) is accepted only when every parameter
  is one the search declared (the ``[search.space]`` / ``space=`` the master or the joining worker was started
  with), of the same kind, with choices among the declared options; its names (sampler, pruner) are known ones
  and its numbers are numbers. Ranges may have moved (coarse-to-fine narrows and widens them) but keep their
  scale and hard limits.
- A trial's parameters are checked the same way before they are written into a trial's config: factories
  (``data.source``, ``model.kind``) come from the config on this machine, never from the study.
- A trial folder named in the study is accepted only as ``trials/<name>`` inside the search folder (no absolute
  path, no ``..``): a trial's kept state, its checkpoint and its config are read there and nowhere else.

Anything else raises :class:`UntrustedStudyError`, which names what was refused and why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from babysit.errors import ConfigError
from babysit.hpsearch._errors import UntrustedStudyError
from babysit.hpsearch.space import Choice, Param, Range, space_from_dict

TRIALS = "trials"
_STAGE_INTS = ("index", "epochs")
_STAGE_OPTIONAL_INTS = ("trials", "budget_epochs", "top_k")


def _int(value: Any, what: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UntrustedStudyError(f"the study's {what} is {value!r}, not an integer >= {minimum}; refusing it.")
    return value


def check_stage(stage: Any, declared: Mapping[str, Param] | None, *, where: str = "the study") -> dict[str, Any]:
    """A published stage read from the study, checked (see the module); returns it unchanged.

    Raises:
        UntrustedStudyError: naming the stage, the field and what was expected.
    """
    from babysit.hpsearch._stages import PRUNERS, SAMPLERS

    if not isinstance(stage, Mapping):
        raise UntrustedStudyError(f"{where} holds a stage that is a {type(stage).__name__}, not a table; refusing it.")
    index = stage.get("index")
    label = f"stage {index!r}"
    for key in _STAGE_INTS:
        _int(stage.get(key), f"{label} {key}", minimum=1)
    for key in _STAGE_OPTIONAL_INTS:
        if stage.get(key) is not None:
            _int(stage.get(key), f"{label} {key}", minimum=0)
    if stage.get("sampler") not in SAMPLERS:
        raise UntrustedStudyError(f"{where}'s {label} names the sampler {stage.get('sampler')!r}; babysit knows "
                                  f"{', '.join(SAMPLERS)}. Refusing it.")
    if stage.get("pruner") not in PRUNERS:
        raise UntrustedStudyError(f"{where}'s {label} names the pruner {stage.get('pruner')!r}; babysit knows "
                                  f"{', '.join(PRUNERS)}. Refusing it.")
    for key in ("space", "next_space"):
        if key == "next_space" and stage.get(key) is None:
            continue
        check_space(stage.get(key), declared, what=f"{where}'s {label} {key.replace('_', ' ')}")
    return dict(stage)


def check_space(raw: Any, declared: Mapping[str, Param] | None, *, what: str) -> dict[str, Param]:
    """A space read from the study: valid ranges and choices, and (with ``declared``) only declared parameters,
    each of its declared kind, scale and limits, choices among the declared options."""
    if not isinstance(raw, Mapping):
        raise UntrustedStudyError(f"{what} is a {type(raw).__name__}, not a table of ranges; refusing it.")
    try:
        space = space_from_dict(raw)
    except ConfigError as exc:
        raise UntrustedStudyError(f"{what} is not a valid search space ({exc}); refusing it.") from None
    if declared is None:
        return space
    for name, param in space.items():
        own = declared.get(name)
        if own is None:
            raise UntrustedStudyError(
                f"{what} names the parameter {name!r}, which this search does not declare (it declares "
                f"{', '.join(declared) or 'none'}); refusing it: a study may set only the declared parameters."
            )
        if isinstance(own, Choice):
            if not isinstance(param, Choice):
                raise UntrustedStudyError(f"{what} makes {name!r} a range; the search declares a choice. Refusing it.")
            allowed = {repr(o) for o in own.options}
            foreign = [o for o in param.options if repr(o) not in allowed]
            if foreign:
                raise UntrustedStudyError(
                    f"{what} offers {foreign[0]!r} for {name!r}, which is not among the declared options "
                    f"{list(own.options)}; refusing it."
                )
        elif not isinstance(param, Range) or (param.log, param.integer, param.limits) != (
                own.log, own.integer, own.limits):
            raise UntrustedStudyError(
                f"{what} gives {name!r} as {param!r}; the search declares {own!r} (a range keeps its scale and "
                "limits from stage to stage). Refusing it."
            )
    return space


def check_params(params: Mapping[str, Any], declared: Mapping[str, Param] | None, *, what: str) -> None:
    """A trial's parameters: declared names only, numbers for ranges, declared options for choices."""
    for name, value in params.items():
        param = None if declared is None else declared.get(name)
        if declared is not None and param is None:
            raise UntrustedStudyError(f"{what} sets {name!r}, which this search does not declare; refusing it.")
        if isinstance(param, Choice):
            if repr(value) not in {repr(o) for o in param.options}:
                raise UntrustedStudyError(f"{what} sets {name!r} = {value!r}, which is not among the declared "
                                          f"options {list(param.options)}; refusing it.")
            continue
        scalar_choice = param is None and isinstance(value, (str, bool, type(None)))  # no declared space to ask
        number = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
        if not scalar_choice and not number:
            raise UntrustedStudyError(f"{what} sets {name!r} = {value!r}, not a finite number; refusing it.")


def trial_folder(search_dir: str | Path | None, run_dir: Any) -> Path | None:
    """The folder a study names for a trial (``trials/<name>``, relative to the search folder), resolved inside
    ``search_dir / trials``; None when there is no such folder to use.

    Raises:
        UntrustedStudyError: an absolute path, ``..``, or anything but one folder below ``trials/``.
    """
    if search_dir is None or run_dir is None:
        return None
    if not isinstance(run_dir, str):
        raise UntrustedStudyError(f"the study names a trial folder {run_dir!r} that is not a path; refusing it.")
    parts = Path(run_dir).parts
    if Path(run_dir).is_absolute() or len(parts) != 2 or parts[0] != TRIALS or parts[1] in (".", ".."):
        raise UntrustedStudyError(
            f"the study names the trial folder {run_dir!r}; a trial folder is trials/<name> inside the search "
            "folder. Refusing to read or write anywhere else."
        )
    root = (Path(search_dir) / TRIALS).resolve()
    folder = (root / parts[1]).resolve()
    if folder.parent != root:  # a symbolic link out of the search folder
        raise UntrustedStudyError(f"the trial folder {run_dir!r} leads out of the search folder ({folder}); "
                                  "refusing it.")
    return folder


def safe_trial_folder(search_dir: str | Path | None, run_dir: Any) -> str | None:
    """``run_dir`` when :func:`trial_folder` accepts it (relative to the search folder), else None."""
    if run_dir is None:
        return None
    try:
        if search_dir is None:
            trial_folder(".", run_dir)
        else:
            trial_folder(search_dir, run_dir)
    except UntrustedStudyError:
        return None
    return run_dir
