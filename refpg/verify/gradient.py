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
from .core import load_callable, safe_call, to_numpy

__all__ = ["GradientReport", "verify_gradient", "verify_gradient_cli"]


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

    def to_dict(self):
        """A JSON-serialisable summary (per method: verdict, worst component, errors)."""
        return {"passed": self.passed, "problems": list(self.problems),
                "checks": {name: {"passed": c.passed, "worst_index": list(c.worst_index),
                                  "max_abs_error": c.max_abs_error,
                                  "analytic": np.asarray(c.analytic).tolist(),
                                  "numeric": np.asarray(c.numeric).tolist()}
                           for name, c in self.checks.items()}}

    def to_json(self, **kw):
        import json
        return json.dumps(self.to_dict(), **kw)

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


def verify_gradient_cli(f, *, grad="", x="", rtol_complex=1e-8):
    """``verify_gradient`` for the command line: ``grad`` names the gradient as
    ``module:function`` and ``x`` is a comma-separated point, e.g.
    ``refpg verify gradient mymod:loss --grad mymod:loss_grad --x 0.1,-0.2,0.3``.

    The report's ``passed`` is the verdict. derivations/verify.md#gradient-checker
    """
    if not grad or not x:
        raise ValueError("refpg verify gradient needs --grad module:function and --x v1,v2,...")
    try:
        point = np.array([float(v) for v in str(x).split(",")])
    except ValueError as exc:
        raise ValueError(f"--x must be comma-separated numbers; got {x!r}") from exc
    return verify_gradient(f, load_callable(grad), point, rtol_complex=rtol_complex)
