"""V1: check a user's gradient of any function of a parameter vector.

``verify_gradient(f, grad, x)`` compares ``grad(x)`` with central differences
(always) and with the complex step (when ``f`` accepts complex input without
dropping the imaginary part), component by component, and returns a
``GradientReport`` with a clear verdict. User code that raises, returns the
wrong shape or NaN produces a failed report, never an exception.
derivations/verify.md#gradient-checker
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..testing import check_gradient
from ..validation import as_float_array
from .core import safe_call, to_numpy

__all__ = ["GradientReport", "verify_gradient"]


@dataclass(frozen=True)
class GradientReport:
    """Verdict of ``verify_gradient``. derivations/verify.md#gradient-checker

    ``passed`` iff every method that could run agrees within its tolerance;
    ``checks`` maps ``"complex"`` / ``"central"`` to ``GradientCheck`` records;
    ``problem`` says why a check could not run (complex step unsupported, the
    user's function raised...).
    """

    passed: bool
    checks: dict
    problems: tuple

    def __str__(self):
        lines = [f"refpg verify gradient: {'PASSED' if self.passed else 'FAILED'}"]
        for p in self.problems:
            lines.append(f"note: {p}")
        for name, chk in self.checks.items():
            lines.append(chk.report(max_rows=10))
        return "\n".join(lines)


def _user_scalar_or_array(f):
    def wrapped(x):
        return to_numpy(f(x))
    return wrapped


def verify_gradient(f, grad, x, *, rtol_complex=1e-8, rtol_central=None, step=None):
    """Compare the user's ``grad(x)`` with numerical derivatives of ``f`` at ``x``.

    ``f: (d,) -> scalar or (*out)``; ``grad: (d,) -> (*out, d)`` (a callable or
    an array). Complex step runs when ``f(x + i h e_k)`` returns a complex
    value; its default tolerance ``rtol_complex = 1e-8`` (user gradients are
    often float32-free but not exactly rounded). Central differences use the
    error their step predicts (``refpg.testing``). derivations/verify.md#gradient-checker
    """
    x = as_float_array("x", x)
    if x.ndim != 1:
        raise ValueError(f"x must be a flat vector (d,); got shape {x.shape}")
    problems = []
    f0 = safe_call(f, (x.copy(),), finite=True)
    if f0.problem:
        return GradientReport(False, {}, (f"f(x) {f0.problem}",))
    g = safe_call(grad, (x.copy(),)) if callable(grad) else safe_call(lambda: grad)
    if g.problem:
        return GradientReport(False, {}, (f"grad(x) {g.problem}",))
    expected_shape = f0.value.shape + (x.size,)
    if g.value.shape != expected_shape:
        return GradientReport(False, {}, (f"grad(x) returned shape {g.value.shape}, expected "
                                          f"{expected_shape} (*out, d)",))
    checks = {}
    fu = _user_scalar_or_array(f)
    try:
        checks["complex"] = check_gradient(fu, x, g.value, method="complex", rtol=rtol_complex)
    except Exception as exc:
        problems.append(f"complex step not available ({type(exc).__name__}: {exc}); "
                        f"central differences only")
    try:
        checks["central"] = check_gradient(fu, x, g.value, method="central", step=step,
                                           rtol=rtol_central)
    except Exception as exc:
        problems.append(f"central differences failed: {type(exc).__name__}: {exc}")
    passed = bool(checks) and all(c.passed for c in checks.values())
    return GradientReport(passed, checks, tuple(problems))

