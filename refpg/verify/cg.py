"""V4 verifier of conjugate gradient, the solver inside every TRPO step.

``verify_cg`` runs the user's ``fn(Avp, b, n_iter) -> x`` and refpg.cg on a battery of
symmetric positive definite systems (condition numbers 1 .. 1e6, a damped tabular
Fisher, seeded random cases) and returns a ``VerifyReport`` with the first failure
shrunk (fewer iterations, principal submatrices). CG iterates are only as well
determined as their sensitivity to rounding, so the tolerance is ``16 n eps max|x|``
plus ``10 x`` the spread of refpg's iterate under Monte-Carlo rounding
(derivations/verify_trpo.md#tolerances). The machinery shared with the other
trust-region verifiers is in ``refpg.verify._trpo_common``; the surrogate and
Fisher-vector-product verifiers are in ``refpg.verify.trpo``.
derivations/verify_trpo.md#calling-conventions
"""
from __future__ import annotations

import math

import numpy as np

from ..cg import conjugate_gradient
from ..policies.tabular import TabularSoftmaxPolicy
from .core import Case, safe_call, to_numpy
from .vectors import vector
from ._trpo_common import (_EPS, _MC_RUNS, _SPREAD_FACTOR, _direct, _eps, _pick, _run, _up)

__all__ = ["verify_cg", "golden_cg"]


def _spd(rng, d, kappa):
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    lam = np.geomspace(1.0, kappa, d) if d > 1 else np.ones(1)
    return (q * lam) @ q.T


def _cg_cases(seed, n_random, residual_tol):
    rng = np.random.default_rng(seed)
    cases = []

    def add(name, A, b, n_iter, kappa):
        cases.append(Case(name, dict(matrix=np.asarray(A, float), b=np.asarray(b, float),
                                     n_iter=int(n_iter), condition=float(kappa))))

    add("one_dimensional", [[2.5]], [1.5], 1, 1.0)
    add("identity_one_iteration", np.eye(4), rng.standard_normal(4), 1, 1.0)
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    add("two_eigenvalues", (q * [1.0, 1.0, 1.0, 1.0, 1.0, 4.0]) @ q.T, rng.standard_normal(6),
        4, 4.0)
    for d, kappa, n in ((5, 10.0, 1), (5, 10.0, 3), (5, 10.0, 12), (30, 100.0, 5),
                        (30, 100.0, 10), (30, 100.0, 60), (30, 1e3, 8), (30, 1e4, 5),
                        (30, 1e6, 3), (12, 1e2, 40)):
        add(f"d{d}_kappa{kappa:g}_n{n}", _spd(rng, d, kappa), rng.standard_normal(d), n, kappa)
    # the damped Fisher of a tabular softmax (singular F + lam I), as TRPO solves it
    z = rng.standard_normal((4, 3))
    F = TabularSoftmaxPolicy(4, 3).fisher(z.ravel(), rng.integers(0, 4, 10))
    lam = 0.1
    ev = np.linalg.eigvalsh(F + lam * np.eye(12))
    add("damped_tabular_fisher_n10", F + lam * np.eye(12), rng.standard_normal(12), 10,
        ev[-1] / ev[0])
    if residual_tol > 0:
        add("solved_exactly_in_one_iteration", np.diag([2.0, 3.0, 5.0]), [1.0, 0.0, 0.0], 5, 2.5)
    for k in range(n_random):
        d = int(rng.integers(2, 21))
        kappa = float(10 ** rng.uniform(0, 3))
        add(f"random_{k}", _spd(rng, d, kappa), rng.standard_normal(d),
            int(rng.integers(1, max(2, d // 2 + 1))), kappa)
    return cases


class _Avp:
    """The product ``v -> A v`` handed to the user's CG (counts calls, checks shape)."""

    def __init__(self, A):
        self.A, self.calls = A, 0

    def __call__(self, v):
        v = np.asarray(to_numpy(v), dtype=float)
        if v.shape != (self.A.shape[0],):
            raise ValueError(f"Avp expects a vector of shape ({self.A.shape[0]},); got {v.shape}")
        self.calls += 1
        return self.A @ v


def _cg_runs(A, b, n_iter, residual_tol, eps, seed, K):
    """refpg's CG (exactly ``n_iter`` iterations unless ``r.r < residual_tol`` after an
    update) in exact float64 (run 0) and under ``K`` Monte-Carlo roundings."""
    out = []
    for k in range(K + 1):
        noise = np.random.default_rng([seed, k]) if k else None

        def Avp(v, noise=noise):
            w = A @ v
            return w if noise is None else w * (1.0 + eps * noise.uniform(-1, 1, w.shape))

        bb = b if noise is None else b * (1.0 + eps * noise.uniform(-1, 1, b.shape))
        res = conjugate_gradient(Avp, bb, max_iter=n_iter, rtol=0.0,
                                 atol=math.sqrt(residual_tol))
        if res.n_iter == 0 and n_iter >= 1 and np.any(bb != 0):   # peers iterate once first
            res = conjugate_gradient(Avp, bb, max_iter=1, rtol=0.0, atol=0.0)
        out.append(res.x)
    return out


def verify_cg(fn, *, residual_tol=0.0, precision="float64", seed=0, n_random=6):
    """Verify ``fn(Avp, b, n_iter) -> x`` (V4): conjugate gradient on ``A x = b`` from
    ``x0 = 0``, exactly ``n_iter`` iterations (CG1) (or fewer if ``r.r <
    residual_tol`` after an update, the peers' rule), compared with refpg.cg.

    ``Avp``: a callable ``v: (d,) -> A v: (d,)`` (NumPy; accepts tensors);
    ``b: (d,)``; ``n_iter`` int. The battery's ``A`` are symmetric positive
    definite with stated condition numbers (1 .. 1e6) and a damped tabular Fisher.
    Tolerance: ``16 n eps max|x| + 10 x`` the spread of refpg's iterate when every
    product ``A v`` and ``b`` are perturbed by a relative ``eps`` (4 runs): CG
    iterates are only as well determined as their sensitivity to rounding.
    Example (NumPy)::

        def cg(Avp, b, n_iter):
            x = np.zeros_like(b); r = b.copy(); p = r.copy(); rr = r @ r
            for _ in range(n_iter):
                Ap = Avp(p); alpha = rr / (p @ Ap)
                x += alpha * p; r -= alpha * Ap; rr_new = r @ r
                p = r + (rr_new / rr) * p; rr = rr_new
            return x

    derivations/verify_trpo.md#calling-conventions
    """
    eps = _eps(precision)
    residual_tol = float(residual_tol)
    if not (residual_tol >= 0 and math.isfinite(residual_tol)):
        raise ValueError(f"residual_tol must be >= 0 and finite; got {residual_tol!r}")

    def evaluate(case, K=_MC_RUNS):
        x = case.inputs
        A, b, n = np.asarray(x["matrix"], float), np.asarray(x["b"], float), int(x["n_iter"])
        runs = _cg_runs(A, b, n, residual_tol, eps, seed, K)
        ref = runs[0]
        spread = max(float(np.max(np.abs(r - ref))) for r in runs[1:]) if K else 0.0
        atol = 16 * max(n, 1) * eps * float(np.max(np.abs(ref))) + _SPREAD_FACTOR * spread \
            + 1e-300
        out = safe_call(fn, (_Avp(A), b.copy(), n), shape=ref.shape)
        return _direct(out, ref, atol)

    def extra(case):
        n, A = int(case.inputs["n_iter"]), np.asarray(case.inputs["matrix"])
        for m in range(1, n):
            yield case.replace(n_iter=m)
        for k in range(max(n, 1), A.shape[0]):   # d >= n_iter: never "solved exactly" early
            keep = list(range(k))
            sub = A[np.ix_(keep, keep)]          # a principal submatrix of an SPD matrix is SPD
            ev = np.linalg.eigvalsh(sub)
            yield case.replace(matrix=sub, b=np.asarray(case.inputs["b"])[keep],
                               condition=float(ev[-1] / ev[0]))

    return _run("conjugate_gradient", _cg_cases(seed, n_random, residual_tol), evaluate,
                tolerance=f"16 n eps max|x| + {_SPREAD_FACTOR:g} x Monte-Carlo rounding spread "
                          f"({_MC_RUNS} runs), eps = {eps:.3g}",
                conventions={"x0": "zeros", "iterations": "exactly n_iter",
                             "residual_tol": residual_tol, "precision": precision},
                extra=extra, size=lambda c: f"(d, n_iter) = ({np.asarray(c.inputs['b']).size}, "
                                            f"{c.inputs['n_iter']})",
                layout=lambda c: {"Avp": "v -> matrix @ v", **c.inputs})


def golden_cg():
    """Golden vectors of CG (V4) after exactly ``n_iter`` iterations (``verify_cg``).

    derivations/verify_trpo.md#golden-vectors
    """
    eps = _EPS["float64"]
    out = []
    for c in _pick(_cg_cases(0, 2, 0.0), ("one_dimensional", "two_eigenvalues",
                                          "d5_kappa10_n3", "d30_kappa100_n10",
                                          "d30_kappa1e+06_n3", "damped_tabular_fisher_n10",
                                          "random_0")):
        x = c.inputs
        runs = _cg_runs(np.asarray(x["matrix"]), np.asarray(x["b"]), x["n_iter"], 0.0, eps,
                        0, _MC_RUNS)
        spread = max(float(np.max(np.abs(r - runs[0]))) for r in runs[1:])
        atol = _up(16 * x["n_iter"] * eps * float(np.max(np.abs(runs[0])))
                   + _SPREAD_FACTOR * spread)
        out.append(vector(c.name, f"CG on A x = b from x0 = 0, exactly {x['n_iter']} "
                          f"iteration(s), condition number {x['condition']:.3g}",
                          "refpg.cg.conjugate_gradient", x, {"x": runs[0]}, rtol=0.0,
                          atol=atol, conventions={"x0": "zeros", "residual_tol": 0.0}))
    return ("conjugate gradient iterate x_n on A x = b (A symmetric positive definite) from "
            "x0 = 0 after exactly n_iter iterations",
            "matrix (d, d) (use v -> matrix @ v as the product); b (d,); n_iter int; "
            "condition float (informative); expected x (d,)", out)
