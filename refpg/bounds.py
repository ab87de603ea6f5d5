"""Lower bounds on ``eta(pi~)`` from quantities of ``pi`` (SCOPE N5, N6).

For policy tables ``pi`` (current) and ``pi~`` (candidate), with
``L = L_pi(pi~)`` the local approximation (I4), ``A = A_pi`` and
``Abar~(s) = sum_a pi~(a|s) A_pi(s, a)`` (derivations/bounds.md):

    CPI (mixture pi~ = (1-alpha) pi + alpha pi'):
        eta(pi~) >= L - 2 eps gamma alpha^2 / (1-gamma)^2,
        eps = max_s |sum_a pi'(a|s) A(s, a)|                                   (B1)
    TRPO Thm 1 (TV):  eta(pi~) >= L - 4 eps gamma alpha^2 / (1-gamma)^2,
        alpha = TV_max(pi, pi~),  eps = max_{s,a} |A(s, a)|                    (B2)
    TRPO Thm 1 (KL):  eta(pi~) >= L - C KL_max(pi, pi~),  C = 4 eps gamma / (1-gamma)^2   (B3)
    Achiam et al. 2017 Cor. 1:
        eta(pi~) >= L - 2 gamma eps~ / (1-gamma)^2 E_{s~d_pi} TV(pi, pi~)[s],
        eps~ = max_s |Abar~(s)|                                                (B4)
    its KL form (Pinsker + Jensen):
        eta(pi~) >= L - sqrt(2) gamma eps~ / (1-gamma)^2 sqrt(KL_mean(pi, pi~))  (B5)

KL is ``KL(pi(.|s) || pi~(.|s))`` (old first, CONVENTIONS.md); ``KL_mean`` weights
states by the normalised ``d_pi``. ``policy_improvement_bounds`` evaluates
them all next to the true ``eta(pi~)``; ``penalised_update`` maximises

    M(theta) = L_{pi_old}(pi_theta) - C KL_max(theta_old, theta)                 (B6)

over softmax parameters, so that ``eta(pi_new) >= M(theta_new) >= M(theta_old)
= eta(pi_old)``. Infinite horizon, ``gamma < 1``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .evaluation import check_policy_table, evaluate
from .identities import local_approximation
from .validation import as_float_array

__all__ = ["tv_per_state", "tv_max", "kl_per_state_tables", "kl_max_tables",
           "cpi_bound", "cpi_decomposition", "tv_bound", "kl_bound", "penalty_coefficient",
           "achiam_bound", "achiam_kl_bound", "BoundValue", "BoundsReport",
           "policy_improvement_bounds", "PenalisedUpdate", "penalised_update"]


def _pair(mdp, pi, pi_tilde):
    pi = check_policy_table(mdp, pi, name="pi")
    pi_tilde = check_policy_table(mdp, pi_tilde, name="pi_tilde")
    if np.iscomplexobj(pi) or np.iscomplexobj(pi_tilde):
        raise TypeError("bounds take real policy tables (they use |.| and max)")
    if mdp.gamma >= 1.0:
        raise ValueError(f"the bounds are for discounted MDPs, gamma < 1; got {mdp.gamma}")
    return pi, pi_tilde


def _tables(p, q):
    p = as_float_array("pi", p, ndim=2)
    q = as_float_array("pi_tilde", q, ndim=2)
    if p.shape != q.shape:
        raise ValueError(f"pi {p.shape} and pi_tilde {q.shape} must have the same shape (S, A)")
    return p, q


def tv_per_state(pi, pi_tilde):
    """``TV(pi(.|s), pi~(.|s)) = 1/2 sum_a |pi(a|s) - pi~(a|s)|: (S,)``; ``pi, pi_tilde: (S, A)``.

    derivations/bounds.md#divergences-between-policy-tables
    """
    p, q = _tables(pi, pi_tilde)
    return 0.5 * np.sum(np.abs(p - q), axis=1)


def tv_max(pi, pi_tilde):
    """``TV_max = max_s TV(pi(.|s), pi~(.|s))`` (the ``alpha`` of (B2)).

    derivations/bounds.md#divergences-between-policy-tables
    """
    return float(np.max(tv_per_state(pi, pi_tilde)))


def kl_per_state_tables(pi, pi_tilde):
    """``KL(pi(.|s) || pi~(.|s)) = sum_{a: pi>0} pi log(pi / pi~): (S,)``; ``+inf`` where ``pi~ = 0 < pi``.

    ``pi, pi_tilde: (S, A)`` probability tables (zeros allowed; ``0 log 0 = 0``).
    derivations/bounds.md#divergences-between-policy-tables
    """
    p, q = _tables(pi, pi_tilde)
    return _kl_rows(p, q)


def _kl_rows(p, q):
    """``sum_a p log(p / q)`` per row, non-negative and relatively accurate for nearby rows.

    With ``r = (q - p) / p`` (``q - p`` exact for nearby entries): ``p log(p/q) =
    p (r - log1p(r)) - (q - p)`` where ``p > 0``, and for two distributions the last
    terms add up to ``sum_{p > 0} (p - q) = sum_{p = 0} q``, so the row sum is
    ``sum_{p > 0} p (r - log1p(r)) + sum_{p = 0} q``: a sum of non-negative terms, ``r - log1p(r)`` by its series ``r^2/2 - r^3/3 + r^4/4 - r^5/5``
    for ``|r| < 1e-3`` (no cancellation). A difference of logs cancels instead: rows
    ``1e-12`` apart gave KLs of ``-3e-17`` (true ``2e-24``; session-4 audit).
    """
    pos = p > 0
    r = np.where(pos, (q - p) / np.where(pos, p, 1.0), 0.0)
    small = np.abs(r) < 1e-3
    series = r * r * (0.5 - r * (1.0 / 3.0 - r * (0.25 - r * 0.2)))
    with np.errstate(divide="ignore"):       # q = 0 < p: r = -1, log1p(-1) = -inf: +inf
        direct = r - np.log1p(r)
    terms = np.where(pos, p * np.where(small, series, direct), q)
    return np.sum(terms, axis=1)


def kl_max_tables(pi, pi_tilde):
    """``KL_max = max_s KL(pi(.|s) || pi~(.|s))`` (B3). derivations/bounds.md#divergences-between-policy-tables"""
    return float(np.max(kl_per_state_tables(pi, pi_tilde)))


@dataclass(frozen=True)
class BoundValue:
    """One lower bound on ``eta(pi~)``: ``value = L - penalty``; ``eps``, ``divergence`` as in its equation.

    ``slack = eta(pi~) - value`` (>= 0 iff the bound holds); ``holds`` is
    ``slack >= -tol`` with ``tol = 1e-10 (1 + |eta|)`` (rounding).
    derivations/bounds.md#bounds-side-by-side
    """

    name: str
    equation: str
    value: float
    penalty: float
    eps: float
    divergence: float
    eta_new: float

    @property
    def slack(self):
        return self.eta_new - self.value

    @property
    def holds(self):
        return bool(self.slack >= -1e-10 * (1.0 + abs(self.eta_new)))


def _bound(name, equation, L, penalty, eps, divergence, eta_new):
    value = L - penalty if np.isfinite(penalty) else -np.inf
    return BoundValue(name=name, equation=equation, value=float(value), penalty=float(penalty),
                      eps=float(eps), divergence=float(divergence), eta_new=float(eta_new))


def cpi_bound(mdp, pi, pi_prime, alpha):
    """(B1) for the mixture ``(1-alpha) pi + alpha pi'``: ``BoundValue`` (Kakade & Langford 2002).

    ``pi, pi_prime: (S, A)``, ``alpha`` in ``[0, 1]``; ``eps = max_s |E_{a~pi'} A_pi(s, a)|``.
    derivations/bounds.md#the-cpi-bound
    """
    from .cpi import mixture_policy
    pi, pi_prime = _pair(mdp, pi, pi_prime)
    return _cpi_value(mdp, pi, pi_prime, alpha, mixture_policy(pi, pi_prime, alpha))


def _cpi_value(mdp, pi, pi_prime, alpha, new):
    # (B1) for pi_new = new = (1 - alpha) pi + alpha pi' (new passed in, so that a pair
    # decomposed by cpi_decomposition is evaluated at pi~ itself, not at its rounding)
    g = mdp.gamma
    eps = float(np.max(np.abs(np.einsum("sa,sa->s", pi_prime, evaluate(mdp, pi).A))))
    penalty = 2.0 * eps * g * alpha ** 2 / (1.0 - g) ** 2
    return _bound("CPI (Kakade-Langford)", "B1", float(local_approximation(mdp, pi, new)),
                  penalty, eps, alpha, float(evaluate(mdp, new).eta))


def cpi_decomposition(pi, pi_tilde):
    """Smallest ``alpha`` with ``pi~ = (1-alpha) pi + alpha pi'`` for a valid policy ``pi'``: ``(alpha, pi')``.

    ``1 - alpha = min(1, min_{s,a: pi>0} pi~(a|s) / pi(a|s))``; then
    ``pi' = (pi~ - (1-alpha) pi) / alpha`` (``pi' = pi~`` when ``alpha = 0``).
    Lets (B1) be evaluated for any pair. derivations/bounds.md#the-cpi-bound
    """
    p, q = _tables(pi, pi_tilde)
    pos = p > 0
    ratio = np.min(np.where(pos, q / np.where(pos, p, 1.0), np.inf))
    keep = min(1.0, float(ratio))
    alpha = 1.0 - keep
    if alpha <= 0.0:
        return 0.0, q.copy()
    prime = np.clip((q - keep * p) / alpha, 0.0, None)     # clip: rounding below zero
    return alpha, prime / prime.sum(axis=1, keepdims=True)


def penalty_coefficient(mdp, pi):
    """``C = 4 eps gamma / (1-gamma)^2`` with ``eps = max_{s,a} |A_pi(s, a)|`` (B3).

    ``pi: (S, A)``. derivations/bounds.md#trpo-theorem-1
    """
    pi = check_policy_table(mdp, pi, name="pi")
    if mdp.gamma >= 1.0:
        raise ValueError(f"penalty_coefficient needs gamma < 1; got {mdp.gamma}")
    eps = float(np.max(np.abs(evaluate(mdp, pi).A)))
    return 4.0 * eps * mdp.gamma / (1.0 - mdp.gamma) ** 2


def tv_bound(mdp, pi, pi_tilde):
    """(B2) TRPO Theorem 1 with ``alpha = TV_max``: ``BoundValue``. ``pi, pi_tilde: (S, A)``.

    derivations/bounds.md#trpo-theorem-1
    """
    pi, pi_tilde = _pair(mdp, pi, pi_tilde)
    g = mdp.gamma
    eps = float(np.max(np.abs(evaluate(mdp, pi).A)))
    alpha = tv_max(pi, pi_tilde)
    return _bound("TRPO Thm 1 (TV)", "B2", float(local_approximation(mdp, pi, pi_tilde)),
                  4.0 * eps * g * alpha ** 2 / (1.0 - g) ** 2, eps, alpha,
                  float(evaluate(mdp, pi_tilde).eta))


def kl_bound(mdp, pi, pi_tilde):
    """(B3) TRPO Theorem 1, KL form ``L - C KL_max``: ``BoundValue``. ``pi, pi_tilde: (S, A)``.

    derivations/bounds.md#trpo-theorem-1
    """
    pi, pi_tilde = _pair(mdp, pi, pi_tilde)
    eps = float(np.max(np.abs(evaluate(mdp, pi).A)))
    C = 4.0 * eps * mdp.gamma / (1.0 - mdp.gamma) ** 2
    kl = kl_max_tables(pi, pi_tilde)
    penalty = C * kl if C > 0 else 0.0          # C = 0: no penalty even if KL = inf
    return _bound("TRPO Thm 1 (KL)", "B3", float(local_approximation(mdp, pi, pi_tilde)),
                  penalty, eps, kl, float(evaluate(mdp, pi_tilde).eta))


def _eps_tilde(mdp, pi, pi_tilde):
    return float(np.max(np.abs(np.einsum("sa,sa->s", pi_tilde, evaluate(mdp, pi).A))))


def achiam_bound(mdp, pi, pi_tilde):
    """(B4) Achiam et al. (2017), Corollary 1: expected TV under ``d_pi``: ``BoundValue``.

    ``pi, pi_tilde: (S, A)``; ``eps~ = max_s |E_{a~pi~} A_pi(s, a)|``.
    derivations/bounds.md#the-bound-of-achiam-et-al-2017
    """
    pi, pi_tilde = _pair(mdp, pi, pi_tilde)
    g = mdp.gamma
    ev = evaluate(mdp, pi)
    eps = _eps_tilde(mdp, pi, pi_tilde)
    tv_mean = float(ev.d @ tv_per_state(pi, pi_tilde))
    return _bound("Achiam et al. Cor. 1 (TV)", "B4", float(local_approximation(mdp, pi, pi_tilde)),
                  2.0 * g * eps * tv_mean / (1.0 - g) ** 2, eps, tv_mean,
                  float(evaluate(mdp, pi_tilde).eta))


def achiam_kl_bound(mdp, pi, pi_tilde):
    """(B5) the KL form of (B4) via Pinsker and Jensen, with ``KL_mean`` under ``d_pi``: ``BoundValue``.

    derivations/bounds.md#the-bound-of-achiam-et-al-2017
    """
    pi, pi_tilde = _pair(mdp, pi, pi_tilde)
    g = mdp.gamma
    ev = evaluate(mdp, pi)
    eps = _eps_tilde(mdp, pi, pi_tilde)
    kl = kl_per_state_tables(pi, pi_tilde)
    # states with d_pi = 0 do not enter the mean (0 * inf is taken as 0)
    kl_mean = float(np.sum(np.where(ev.d > 0, ev.d * np.where(ev.d > 0, kl, 0.0), 0.0)))
    penalty = np.sqrt(2.0) * g * eps * np.sqrt(kl_mean) / (1.0 - g) ** 2 if eps > 0 else 0.0
    return _bound("Achiam et al. (KL mean)", "B5", float(local_approximation(mdp, pi, pi_tilde)),
                  penalty, eps, kl_mean, float(evaluate(mdp, pi_tilde).eta))


@dataclass(frozen=True)
class BoundsReport:
    """Every bound for one pair ``(pi, pi~)`` next to the true ``eta(pi~)``.

    ``eta_old = eta(pi)``, ``eta_new = eta(pi~)``, ``L = L_pi(pi~)``;
    ``bounds``: tuple of ``BoundValue`` (B1 via ``cpi_decomposition``, B2, B3,
    B4, B5). ``all_hold`` iff every bound holds. derivations/bounds.md#bounds-side-by-side
    """

    eta_old: float
    eta_new: float
    L: float
    bounds: tuple

    @property
    def all_hold(self):
        return all(b.holds for b in self.bounds)

    def table(self):
        """Plain-text rows: name, equation, bound value, slack, eps, divergence."""
        lines = [f"eta(pi) = {self.eta_old:.6g}, eta(pi~) = {self.eta_new:.6g}, "
                 f"L_pi(pi~) = {self.L:.6g}",
                 f"{'bound':<28} {'eq':<4} {'value':>12} {'slack':>12} {'eps':>10} {'div':>10}"]
        for b in self.bounds:
            lines.append(f"{b.name:<28} {b.equation:<4} {b.value:>12.6g} {b.slack:>12.4g} "
                         f"{b.eps:>10.4g} {b.divergence:>10.4g}")
        return "\n".join(lines)


def policy_improvement_bounds(mdp, pi, pi_tilde):
    """``BoundsReport``: (B1)-(B5) for ``pi, pi_tilde: (S, A)`` next to the true ``eta(pi~)``.

    (B1) uses the decomposition ``pi~ = (1-alpha) pi + alpha pi'`` with the
    smallest ``alpha`` (``cpi_decomposition``). derivations/bounds.md#bounds-side-by-side
    """
    pi, pi_tilde = _pair(mdp, pi, pi_tilde)
    alpha, prime = cpi_decomposition(pi, pi_tilde)
    bounds = (_cpi_value(mdp, pi, prime, alpha, pi_tilde), tv_bound(mdp, pi, pi_tilde),
              kl_bound(mdp, pi, pi_tilde), achiam_bound(mdp, pi, pi_tilde),
              achiam_kl_bound(mdp, pi, pi_tilde))
    return BoundsReport(eta_old=float(evaluate(mdp, pi).eta),
                        eta_new=float(evaluate(mdp, pi_tilde).eta),
                        L=float(local_approximation(mdp, pi, pi_tilde)), bounds=bounds)


@dataclass(frozen=True)
class PenalisedUpdate:
    """Result of ``penalised_update``: ``argmax_theta M(theta)``, ``M = L(theta) - C KL_max(theta)`` (B6).

    ``theta: (d,)`` the returned parameters; ``objective = M(theta)``;
    ``objective_old = M(theta_old) = eta_old``; ``eta_old``, ``eta_new``;
    ``kl_max``; ``C``; ``accepted``: the optimiser's point had
    ``M >= M(theta_old)`` (otherwise ``theta = theta_old`` is returned);
    ``success``, ``n_iter``, ``message`` from scipy's SLSQP.
    derivations/bounds.md#the-penalised-update
    """

    theta: np.ndarray
    objective: float
    objective_old: float
    eta_old: float
    eta_new: float
    kl_max: float
    C: float
    accepted: bool
    success: bool
    n_iter: int
    message: str

    @property
    def improvement(self):
        return self.eta_new - self.eta_old


def penalised_update(mdp, policy, theta_old, *, C=None, maxiter=500, ftol=1e-14):
    """Maximise ``M(theta) = L_{pi_old}(pi_theta) - C KL_max(theta_old, theta)`` (B6) numerically.

    ``KL_max`` is a maximum over states, not differentiable where two states
    tie, so it is handled in epigraph form: maximise ``L(theta) - C t``
    subject to ``KL_s(theta) <= t`` for every state ``s`` (smooth constraints,
    solved by SLSQP with the analytic gradients of ``L`` and of each ``KL_s``).
    ``C`` defaults to ``penalty_coefficient`` (B3), for which
    ``eta(pi_new) >= M(theta_new) >= M(theta_old) = eta(pi_old)``: the update
    never decreases ``eta``. If the optimiser returns a point with
    ``M < M(theta_old)`` the step is refused and ``theta_old`` returned.
    ``theta_old: (d,)``; ``policy`` tabular-capable softmax. Returns ``PenalisedUpdate``.
    derivations/bounds.md#the-penalised-update
    """
    from scipy.optimize import minimize

    from .identities import grad_local_approximation_params, local_approximation_params
    from .policy_gradient import policy_table

    pi_old = policy_table(mdp, policy, theta_old)
    theta_old = policy.check_theta(theta_old, "theta_old")
    if np.iscomplexobj(theta_old):
        raise TypeError("penalised_update needs a real theta_old")
    if mdp.gamma >= 1.0:
        raise ValueError(f"penalised_update needs gamma < 1; got {mdp.gamma}")
    if C is None:
        C = penalty_coefficient(mdp, pi_old)
    C = float(C)
    if not (np.isfinite(C) and C >= 0):
        raise ValueError(f"C must be finite and >= 0; got {C!r}")
    maxiter = int(maxiter)
    states = np.arange(mdp.n_states)
    eta_old = float(evaluate(mdp, pi_old).eta)
    d = policy.n_params
    # the objective is scaled by 1 / (1 + C) so that it is O(1) for gamma near 1
    scale = 1.0 / (1.0 + C)

    def unpack(x):
        return x[:d], x[d]

    def fun(x):
        th, t = unpack(x)
        return -scale * (float(local_approximation_params(mdp, policy, theta_old, th))
                         - eta_old - C * t)

    def jac(x):
        th, _ = unpack(x)
        g = np.empty(d + 1)
        g[:d] = -scale * grad_local_approximation_params(mdp, policy, theta_old, th)
        g[d] = scale * C
        return g

    def cons(x):
        th, t = unpack(x)
        return t - policy.kl(theta_old, th, states)

    def cons_jac(x):
        th, _ = unpack(x)
        J = np.empty((mdp.n_states, d + 1))
        J[:, :d] = -policy.grad_kl(theta_old, th, states)
        J[:, d] = 1.0
        return J

    x0 = np.concatenate([theta_old, [0.0]])
    res = minimize(fun, x0, jac=jac, method="SLSQP",
                   constraints=[{"type": "ineq", "fun": cons, "jac": cons_jac}],
                   bounds=[(None, None)] * d + [(0.0, None)],
                   options={"maxiter": maxiter, "ftol": ftol})
    theta_new = np.asarray(res.x[:d], dtype=float)

    def M(th):
        L = float(local_approximation_params(mdp, policy, theta_old, th))
        kl = float(np.max(policy.kl(theta_old, th, states)))
        return L - C * kl, kl

    m_new, kl_new = M(theta_new) if np.all(np.isfinite(theta_new)) else (-np.inf, np.inf)
    m_old = eta_old
    accepted = bool(m_new >= m_old)
    if not accepted:
        theta_new, m_new, kl_new = theta_old.copy(), m_old, 0.0
    eta_new = float(evaluate(mdp, policy_table(mdp, policy, theta_new)).eta)
    return PenalisedUpdate(theta=theta_new, objective=m_new, objective_old=m_old,
                           eta_old=eta_old, eta_new=eta_new, kl_max=kl_new, C=C,
                           accepted=accepted, success=bool(res.success), n_iter=int(res.nit),
                           message=str(res.message))
