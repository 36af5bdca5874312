"""babysit's search uses Optuna through its public API only, so an Optuna release cannot break it unannounced."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest
import tomllib
from packaging.specifiers import SpecifierSet

import babysit

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "src" / "babysit").rglob("*.py"))

# a private module (optuna._x, optuna.storages._rdb, ...) imported or named
PRIVATE_MODULE = re.compile(r"\b(?:from|import)\s+optuna(?:\.\w+)*\._\w+|\boptuna(?:\.\w+)*\._\w+")
# private members of Optuna's objects that babysit once used: trial and study ids, a study's storage, the RDB
# storage's stale-trial query and its cache, a study's private trial reader, a distribution's private test
PRIVATE_MEMBERS = re.compile(
    r"\._trial_id\b|\._study_id\b|\bstudy\._storage\b|_get_stale_trial_ids|\._cached_frozen_trial|\._contains\(|"
    r"\._get_trials\(|\._is_multi_objective\("
)


def _code(path: Path) -> list[tuple[int, str]]:
    """Lines of code without comments (a comment may name what the code avoids)."""
    return [(n, line.split("#", 1)[0]) for n, line in enumerate(path.read_text().splitlines(), 1)]


def test_no_source_file_imports_a_private_optuna_module() -> None:
    hits = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}" for p in SOURCES for n, line in _code(p)
            if PRIVATE_MODULE.search(line)]
    assert not hits, "private Optuna modules:\n" + "\n".join(hits)


def test_no_source_file_touches_a_private_member_of_optuna() -> None:
    hits = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}" for p in SOURCES for n, line in _code(p)
            if PRIVATE_MEMBERS.search(line)]
    assert not hits, "private Optuna members:\n" + "\n".join(hits)


def test_the_grep_would_catch_what_the_search_used_to_do() -> None:
    # the patterns above, tried on lines the search layer held before it moved to the public API
    before = [
        "        from optuna.storages._rdb import models",
        "        from optuna.storages._rdb.storage import _create_scoped_session",
        "    from optuna.storages._cached_storage import _CachedStorage",
    ]
    assert all(PRIVATE_MODULE.search(line) for line in before)
    members = [
        "        system_attrs = ot.storage.get_trial(ot._trial_id).system_attrs",
        "                study._storage.set_trial_user_attr(trial._trial_id, key, value)",
        "    def _get_stale_trial_ids(self, study_id: int) -> list[int]:",
        "            if not dist._contains(dist.to_internal_repr(trial.params[name])):",
        "        return self._mine(self._study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache))",
    ]
    assert all(PRIVATE_MEMBERS.search(line) for line in members)


def test_pyproject_names_the_optuna_versions_babysit_supports() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    requirement = next(r for r in extras["search"] if r.startswith("optuna"))
    spec = SpecifierSet(requirement[len("optuna"):])
    assert spec.contains(optuna.__version__), (requirement, optuna.__version__)
    assert any(s.operator == "<" for s in spec), f"{requirement}: no upper bound (the next major may break it)"
    assert any(s.operator == ">=" for s in spec), f"{requirement}: no lower bound"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_stage_sampler_learns_from_its_own_stage_only(tmp_path: Path, seed: int) -> None:
    # the one place babysit meets Optuna's internals: samplers read a study's trials through a private name, which
    # the stage view answers. If a release reads them another way, TPE learns from stage 1 too and this fails.
    import statistics

    from babysit.hpsearch._storage import default_url, make_storage
    from babysit.hpsearch._view import STAGE_KEY, StageSampler, make_sampler
    from babysit.hpsearch.space import uniform

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = make_storage(default_url(tmp_path))
    study = optuna.create_study(study_name="view", storage=storage, direction="maximize")
    distribution = optuna.distributions.FloatDistribution(0.0, 1.0)
    for i in range(30):  # stage 1 (short trials, higher accuracies): the best at x = 0; stage 2's at x = 1
        study.add_trial(optuna.create_trial(params={"x": i / 100}, distributions={"x": distribution}, value=2 - i / 100,
                                            user_attrs={STAGE_KEY: 1, "epochs": 1}))
        study.add_trial(optuna.create_trial(params={"x": 1 - i / 100}, distributions={"x": distribution},
                                            value=1 - i / 100, user_attrs={STAGE_KEY: 2, "epochs": 3}))
    inner = make_sampler("tpe", seed=seed, space={"x": uniform(0.0, 1.0)}, trials=None, parallel=False)
    stage = optuna.load_study(study_name="view", storage=storage, sampler=StageSampler(inner, 2, 3, storage=storage))
    trials = [stage.ask() for _ in range(8)]
    xs = [t.suggest_float("x", 0.0, 1.0) for t in trials]
    # a TPE that saw stage 1 samples every x within a hair of 0
    assert statistics.median(xs) > 0.1, f"TPE sampled {xs}: it learnt from stage 1's trials"
    assert all(t.user_attrs[STAGE_KEY] == 2 and t.user_attrs["epochs"] == 3 for t in trials)  # tagged publicly
    assert optuna.load_study(study_name="view", storage=storage).trials[-1].user_attrs[STAGE_KEY] == 2


def test_a_search_folder_opens_with_optuna_alone_as_optuna_dashboard_opens_it(tmp_path: Path) -> None:
    # what `optuna-dashboard runs/NAME-search/study.journal` does: Optuna's own journal storage, no babysit code
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from babysit.hpsearch.toys import Peak

    result = babysit.search(Peak(log={"lr": 1e-2}), {"lr": babysit.space.loguniform(1e-5, 1.0)},
                            strategy="coarse_to_fine", budget_epochs=30, epochs=3, seed=0, progress=False,
                            search_dir=tmp_path / "s")
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "s" / "study.journal")))
    [summary] = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(study.trials) == len(result.trials) and finished
    assert study.best_value == pytest.approx(result.best_value)
    assert {t.user_attrs["stage"] for t in study.trials} == {s["index"] for s in result.stages}
    assert all(set(t.params) == {"lr"} for t in study.trials)
