"""The doctor: from a diagnosis to a verified repair (diagnose, apply a config fix, rerun, verify; repeated).

``babysit.doctor(config)`` (and ``babysit doctor CONFIG``) runs the gradient and sanity checks, a short
babysat run and its diagnosis; then it applies the best-supported config fix (``remedies``), reruns and keeps
the fix only when its finding is gone and validation accuracy rose by more than the noise of the validation
split (``verify``). Code-level faults are named with their instruction and never covered up by a config
change. The package is not called ``doctor`` because ``babysit.doctor`` is the function.
"""

from __future__ import annotations

from babysit.repair._session import doctor
from babysit.repair.attempt import Attempt
from babysit.repair.remedies import CODE_LEVEL, Remedy, apply_fix, remedy_for, with_fixes
from babysit.repair.result import DoctorResult, fixed_path
from babysit.repair.verify import accuracy_noise, judge

__all__ = ["CODE_LEVEL", "Attempt", "DoctorResult", "Remedy", "accuracy_noise", "apply_fix", "doctor",
           "fixed_path", "judge", "remedy_for", "with_fixes"]
