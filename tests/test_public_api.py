"""The public surface is a tested list: babysit.__all__ equals the public names of the package (httpx)."""

from __future__ import annotations

import types

import babysit


def test_all_is_sorted_public_names() -> None:
    public = {
        name for name, value in vars(babysit).items()
        if not name.startswith("_") and name != "annotations" and not isinstance(value, types.ModuleType)
    }
    exported = set(babysit.__all__)
    # every public function and class is exported on purpose, and __all__ lists nothing that is missing
    assert babysit.__all__ == sorted(babysit.__all__)
    assert public <= exported
    assert all(hasattr(babysit, name) for name in exported)


def test_design_contract_names_exist() -> None:
    # the names promised to outside callers (README.md, docs/api/)
    assert callable(babysit.fit)
    assert issubclass(babysit.StopTraining, Exception) and isinstance(babysit.Callback(), babysit.Callback)
    assert callable(babysit.optim.build)
    assert callable(babysit.schedules.build)
    assert callable(babysit.History.load)
    assert callable(babysit.data.load)
    assert callable(babysit.models.build)
