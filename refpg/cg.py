"""Conjugate gradient on a Fisher-vector product, with damping (SCOPE N9).

Solves ``(F + lam I) x = g`` for a symmetric positive semi-definite ``F``
given only as a product ``v -> F v`` (derivations/cg.md):

    r_0 = g - (F + lam I) x_0,  p_0 = r_0
    alpha_k = r_k.r_k / p_k.(F + lam I) p_k
    x_{k+1} = x_k + alpha_k p_k,   r_{k+1} = r_k - alpha_k (F + lam I) p_k       (CG1)
    beta_k  = r_{k+1}.r_{k+1} / r_k.r_k,   p_{k+1} = r_{k+1} + beta_k p_k

    stop when ||r_k|| <= tol,   tol = max(rtol ||g||, atol)                      (CG2)
    converged  <=>  ||g - (F + lam I) x|| <= tol   (TRUE residual, recomputed)   (CG3)
    stop when p_k.M p_k <= 64 eps max_{j<k} (p_j.M p_j / p_j.p_j) p_k.p_k        (CG4)

In exact arithmetic CG terminates in at most ``m`` iterations, ``m`` the
number of distinct eigenvalues of ``F + lam I`` excited by ``r_0`` (so at most
``d``). The recursive residual of (CG1) drifts from the true one in floating
point; (CG3) recomputes the true residual with one extra product, so the
reported ``residual_norm`` is a fact about the returned ``x``, and
``||x - x*|| <= residual_norm / lambda_min(F + lam I)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .validation import as_float_array, check_positive_int

__all__ = ["CGResult", "conjugate_gradient"]

#: (CG4): a search direction whose curvature ``p.Mp / p.p`` is below this multiple of
#: the largest curvature seen so far (a lower bound on ``||M||``) lies in the null space
#: of ``M`` up to rounding: ``M p`` is then rounding noise of size ``eps ||M|| ||p||``,
#: and a step ``alpha = r.r / p.Mp`` along it only amplifies that noise (for a singular
#: ``F`` such as a tabular softmax Fisher, it blows up the null-space component of ``x``).
_CURVATURE_FLOOR = 64 * np.finfo(float).eps


@dataclass(frozen=True)
class CGResult:
    """Outcome of ``conjugate_gradient``.

    ``x: (d,)`` the approximate solution of ``(F + lam I) x = g``;
    ``n_iter`` CG iterations done; ``residual_norm = ||g - (F + lam I) x||``
    recomputed for the returned ``x`` (CG3); ``converged`` iff
    ``residual_norm <= tolerance`` (NaN fails); ``residual_history: (n_iter+1,)``
    the recursive residual norms ``||r_k||`` of (CG1); ``tolerance =
    max(rtol ||g||, atol)``; ``damping = lam``; ``stop_reason`` in words;
    ``n_fvp`` products evaluated (including the initial and final residuals).
    derivations/cg.md#the-algorithm
    """

    x: np.ndarray
    n_iter: int
    residual_norm: float
    converged: bool
    residual_history: np.ndarray
    tolerance: float
    damping: float
    stop_reason: str
    n_fvp: int


def _apply(fvp, v, damping, d, k):
    out = np.asarray(fvp(v))
    if out.shape != (d,):
        raise ValueError(f"fvp(v) must return shape ({d},); got {out.shape} at iteration {k}")
    if out.dtype.kind not in "fiu":
        raise TypeError(f"fvp(v) must return real numbers; got dtype {out.dtype}")
    out = out.astype(np.float64, copy=False)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"fvp(v) returned a non-finite vector at iteration {k} "
                         f"(NaN/inf in the Fisher-vector product)")
    return out + damping * v if damping else out


def conjugate_gradient(fvp, g, *, damping=0.0, x0=None, max_iter=None, rtol=1e-10, atol=0.0):
    """Solve ``(F + damping I) x = g`` by conjugate gradient (CG1)-(CG3); returns ``CGResult``.

    ``fvp``: callable ``v: (d,) -> F v: (d,)`` (symmetric positive semi-definite
    ``F``); ``g: (d,)``; ``damping >= 0``; ``x0: (d,)`` start (default zeros;
    sb3-contrib starts at ``1e-4 * randn``, pass it here); ``max_iter`` cap
    (default ``10 d``, scipy's; peers use 10 or 15); stop rule (CG2)
    ``||r_k|| <= max(rtol ||g||, atol)``. Peers that stop on
    ``r.r < residual_tol`` (modular_rl, baselines: 1e-10) correspond to
    ``atol = sqrt(residual_tol)``, ``rtol = 0``.

    If a search direction has ``p.(F + lam I)p <= 0`` or NaN (``F`` not
    positive definite on the Krylov space, e.g. ``g`` in the null space of
    an undamped singular ``F``), or a curvature at the rounding level of the
    largest seen (CG4), the iteration stops and says so in ``stop_reason``;
    it never divides by zero. derivations/cg.md#the-algorithm
    """
    g = as_float_array("g", g, ndim=1)
    d = g.shape[0]
    if d == 0:
        raise ValueError("g must be non-empty")
    try:
        damping = float(damping)
    except Exception as exc:
        raise TypeError(f"damping must be a real number; got {damping!r}") from exc
    if not (damping >= 0.0 and np.isfinite(damping)):
        raise ValueError(f"damping must be >= 0 and finite; got {damping!r}")
    rtol, atol = float(rtol), float(atol)
    if not (rtol >= 0.0 and atol >= 0.0 and np.isfinite(rtol) and np.isfinite(atol)):
        raise ValueError(f"rtol and atol must be >= 0 and finite; got rtol={rtol!r}, atol={atol!r}")
    max_iter = 10 * d if max_iter is None else check_positive_int("max_iter", max_iter, minimum=0)
    if not callable(fvp):
        raise TypeError(f"fvp must be callable v -> F v; got {type(fvp).__name__}")
    # CG is linear in (g, x): run it on g / s with s the power of two just above max|g|,
    # which is exact (bit-identical results) and keeps r.r and p.Ap away from overflow
    # and underflow whatever the scale of g (1e155 or 1e-170 would otherwise give x = 0)
    gmax = float(np.max(np.abs(g)))
    s = float(np.ldexp(1.0, int(np.frexp(gmax)[1]))) if 0.0 < gmax < np.inf else 1.0
    g = g / s
    tol_s = max(rtol * float(np.linalg.norm(g)), atol / s)
    tol = max(rtol * s * float(np.linalg.norm(g)), atol)
    n_fvp = 0
    if x0 is None:
        x = np.zeros(d)
        r = g.copy()
    else:
        x = as_float_array("x0", x0, shape=(d,)) / s
        r = g - _apply(fvp, x, damping, d, 0)
        n_fvp += 1
    p = r.copy()
    rr = float(r @ r)
    history = [np.sqrt(rr)]
    reason = f"max_iter = {max_iter} reached"
    rayleigh_max = 0.0
    k = 0
    while True:
        if np.sqrt(rr) <= tol_s:
            reason = "recursive residual <= tolerance"
            break
        if k >= max_iter:
            break
        Ap = _apply(fvp, p, damping, d, k)
        n_fvp += 1
        pAp = float(p @ Ap)
        pp = float(p @ p)
        if not (pAp > 0.0):
            reason = (f"breakdown at iteration {k}: p.(F + lam I)p = {pAp * s * s:.3e} is not > 0 "
                      f"(F + lam I is not positive definite on the Krylov space)")
            break
        if pAp <= _CURVATURE_FLOOR * rayleigh_max * pp:
            reason = (f"rounding floor at iteration {k}: curvature p.Mp/p.p = {pAp / pp:.3e} "
                      f"<= {_CURVATURE_FLOOR:.1e} x largest seen {rayleigh_max:.3e} (CG4); "
                      f"further iterations would only amplify rounding errors")
            break
        rayleigh_max = max(rayleigh_max, pAp / pp)
        alpha = rr / pAp
        x = x + alpha * p
        r = r - alpha * Ap
        rr_new = float(r @ r)
        history.append(np.sqrt(rr_new))
        k += 1
        p = r + (rr_new / rr) * p
        rr = rr_new
    true_r = g - _apply(fvp, x, damping, d, k)
    n_fvp += 1
    res = float(np.linalg.norm(true_r))
    return CGResult(x=x * s, n_iter=k, residual_norm=res * s, converged=bool(res <= tol_s),
                    residual_history=np.asarray(history) * s, tolerance=tol, damping=damping,
                    stop_reason=reason, n_fvp=n_fvp)
