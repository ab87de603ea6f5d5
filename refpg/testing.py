"""Gradient checks any user can point at their own function (SCOPE V1).

Two numerical derivatives of ``f: R^d -> R^m`` (or ``R``) at ``x``
(derivations/gradient_checks.md):

* central differences ``D_h = (f(x + h e_k) - f(x - h e_k)) / (2h)``, error
  ``h^2 f''' / 6`` (truncation) ``+ eps |f| / h`` (rounding); the truncation
  term is *estimated* from ``D_h - D_2h = -3 h^2 f'''/6 + O(h^4)`` (Richardson),
  so every comparison carries the error its step predicts;              (GC1)
* complex step ``Im f(x + i h e_k) / h`` with ``h = 1e-20``: no subtraction,
  error ``h^2 f'''/6 ~ 1e-40``, so it agrees with an analytic gradient to
  machine precision whenever ``f`` is real-analytic and written without
  ``abs``, ``max``, ``np.real`` or comparisons on the perturbed path.      (GC2)

``check_gradient`` compares an analytic gradient with either, component by
component, and returns a ``GradientCheck`` record whose ``str`` names the
worst component with both values.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .validation import as_float_array

__all__ = ["central_difference", "central_difference_with_error", "complex_step",
           "GradientCheck", "check_gradient"]

_EPS = np.finfo(float).eps
#: default complex step; any h below ~1e-150/|x| works, 1e-20 is customary.
COMPLEX_STEP = 1e-20


def _point(x):
    x = as_float_array("x", x)
    if x.ndim != 1:
        raise ValueError(f"x must be a flat vector (d,); got shape {x.shape}")
    return x


def _default_step(x):
    # minimises h^2 |f'''|/6 + eps |f| / h for |f| ~ |f'''| ~ 1, scaled with |x_k|
    return (3.0 * _EPS) ** (1.0 / 3.0) * np.maximum(1.0, np.abs(x))


def _steps(x, step):
    if step is None:
        return _default_step(x)
    h = np.broadcast_to(np.asarray(step, dtype=float), x.shape).copy()
    if np.any(~np.isfinite(h)) or np.any(h <= 0):
        raise ValueError(f"step must be positive and finite; got {step!r}")
    return h


def _call(f, x):
    return np.asarray(f(x))


def central_difference(f, x, step=None):
    """Central-difference derivative (GC1): ``(*out, d)`` for ``f(x): (*out)``.

    ``step`` is a scalar or per-component ``(d,)``; default ``(3 eps)^(1/3) max(1, |x_k|)``.
    derivations/gradient_checks.md#central-differences
    """
    return central_difference_with_error(f, x, step)[0]


def central_difference_with_error(f, x, step=None, *, f_scale=None):
    """Central differences and the error their step predicts (GC1).

    Returns ``(D_h, err)`` with ``err = |D_h - D_2h| / 3 + 4 eps F / h``
    (estimated truncation plus rounding), both ``(*out, d)``, where
    ``F = max(|f|, f_scale)``. Pass ``f_scale`` when ``f`` is a small result of
    cancelling larger terms (a KL near zero, a difference of returns): its
    rounding error is ``eps`` times the size of those terms, not of ``f``.
    derivations/gradient_checks.md#central-differences
    """
    x = _point(x)
    h = _steps(x, step)
    f0 = _call(f, x)
    cols, errs = [], []
    for k in range(x.size):
        e = np.zeros_like(x)
        e[k] = 1.0
        fp, fm = _call(f, x + h[k] * e), _call(f, x - h[k] * e)
        fp2, fm2 = _call(f, x + 2 * h[k] * e), _call(f, x - 2 * h[k] * e)
        d1 = (fp - fm) / (2 * h[k])
        d2 = (fp2 - fm2) / (4 * h[k])
        scale = np.maximum.reduce([np.abs(f0), np.abs(fp), np.abs(fm)])
        if f_scale is not None:
            scale = np.maximum(scale, f_scale)
        cols.append(d1)
        errs.append(np.abs(d1 - d2) / 3.0 + 4.0 * _EPS * scale / h[k])
    return np.stack(cols, axis=-1), np.stack(errs, axis=-1)


def complex_step(f, x, step=COMPLEX_STEP):
    """Complex-step derivative (GC2) ``Im f(x + i h e_k) / h``: ``(*out, d)``.

    ``f`` must accept ``complex128`` input and be real-analytic along the path.
    derivations/gradient_checks.md#complex-step
    """
    x = _point(x)
    cols = []
    for k in range(x.size):
        z = x.astype(np.complex128)
        z[k] += 1j * step
        val = _call(f, z)
        if not np.iscomplexobj(val):
            raise TypeError("complex_step: f returned a real value for complex input; it "
                            "drops the imaginary part (np.real, abs, float(), max...?)")
        cols.append(np.imag(val) / step)
    return np.stack(cols, axis=-1)


@dataclass(frozen=True)
class GradientCheck:
    """Outcome of ``check_gradient``.

    ``analytic, numeric, abs_error, tolerance: (*out, d)``; ``worst_index`` is
    the index where ``abs_error / tolerance`` is largest; ``passed`` iff
    ``abs_error <= tolerance`` everywhere (NaN fails).
    derivations/gradient_checks.md#checking-a-gradient
    """

    passed: bool
    method: str
    analytic: np.ndarray
    numeric: np.ndarray
    abs_error: np.ndarray
    tolerance: np.ndarray
    worst_index: tuple

    @property
    def max_abs_error(self):
        return float(np.max(self.abs_error)) if self.abs_error.size else 0.0

    @property
    def max_rel_error(self):
        denom = np.maximum(np.abs(self.numeric), np.finfo(float).tiny)
        return float(np.max(self.abs_error / denom)) if self.abs_error.size else 0.0

    def report(self, max_rows=20):
        """A per-component table: index, analytic, numeric, |diff|, tolerance, ok."""
        lines = [f"gradient check ({self.method}): {'PASSED' if self.passed else 'FAILED'}; "
                 f"worst component {self.worst_index}"]
        lines.append(f"{'index':>12} {'analytic':>14} {'numeric':>14} {'|diff|':>10} "
                     f"{'tolerance':>10}  ok")
        flat = list(np.ndindex(self.abs_error.shape))
        order = sorted(flat, key=lambda i: -float(self.abs_error[i] / self.tolerance[i])
                       if np.isfinite(self.abs_error[i]) else -np.inf)
        for i in order[:max_rows]:
            ok = bool(self.abs_error[i] <= self.tolerance[i])
            lines.append(f"{str(i):>12} {self.analytic[i]:>14.6e} {self.numeric[i]:>14.6e} "
                         f"{self.abs_error[i]:>10.2e} {self.tolerance[i]:>10.2e}  "
                         f"{'yes' if ok else 'NO'}")
        if len(order) > max_rows:
            lines.append(f"... {len(order) - max_rows} more components")
        return "\n".join(lines)

    def __str__(self):
        i = self.worst_index
        if not i and self.abs_error.ndim:
            return f"gradient check ({self.method}): no components"
        return (f"gradient check ({self.method}) {'PASSED' if self.passed else 'FAILED'}: "
                f"d/dx{list(i)}: analytic={self.analytic[i]:.10e} "
                f"numeric={self.numeric[i]:.10e} (|diff|={self.abs_error[i]:.2e}, "
                f"tolerance={self.tolerance[i]:.2e})")


def check_gradient(f, x, grad, *, method="complex", rtol=None, atol=None, step=None,
                   f_scale=None):
    """Compare ``grad(x)`` (or an array) with a numerical derivative of ``f`` at ``x``.

    ``method="complex"``: tolerance ``atol + rtol |numeric|`` with defaults
    ``rtol = 1e-10`` and ``atol = 1e-10 * max|numeric|`` (machine precision
    with a margin for the analytic route's own rounding).
    ``method="central"``: tolerance ``10 * err + atol + rtol |numeric|`` where
    ``err`` is the predicted error of the step (GC1); defaults ``rtol = 0``,
    ``atol = 1e-12 * max|numeric|``; ``f_scale`` as in
    ``central_difference_with_error``.

    ``f(x)`` may return a scalar or an array ``(*out)``; ``grad`` is a callable
    returning ``(*out, d)`` or that array itself. Never raises on a mismatch:
    read ``.passed`` / ``str(result)``. derivations/gradient_checks.md#checking-a-gradient
    """
    x = _point(x)
    analytic = np.asarray(grad(x) if callable(grad) else grad)
    if method == "complex":
        numeric = complex_step(f, x, COMPLEX_STEP if step is None else step)
        err = np.zeros_like(numeric)
        rtol = 1e-10 if rtol is None else rtol
        factor = 1.0
    elif method == "central":
        numeric, err = central_difference_with_error(f, x, step, f_scale=f_scale)
        rtol = 0.0 if rtol is None else rtol
        factor = 10.0
    else:
        raise ValueError(f"method must be 'complex' or 'central'; got {method!r}")
    if analytic.shape != numeric.shape:
        raise ValueError(f"grad has shape {analytic.shape} but the numerical derivative of f "
                         f"has shape {numeric.shape} (*out, d)")
    scale = float(np.max(np.abs(numeric))) if numeric.size else 0.0
    if atol is None:
        atol = (1e-10 if method == "complex" else 1e-12) * scale + 1e-300
    tol = factor * err + atol + rtol * np.abs(numeric)
    diff = np.abs(analytic - numeric)
    diff = np.where(np.isnan(diff), np.inf, diff)
    ratio = diff / tol
    worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape) if ratio.size else ()
    passed = bool(np.all(diff <= tol))
    return GradientCheck(passed=passed, method=method, analytic=np.real(analytic),
                         numeric=numeric, abs_error=diff, tolerance=tol,
                         worst_index=tuple(int(i) for i in worst))
