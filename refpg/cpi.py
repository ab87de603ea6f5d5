"""Conservative policy iteration (Kakade & Langford 2002; SCOPE N5).

One CPI step from ``pi`` (derivations/cpi.md):

    pi'(s)  = argmax_a A_pi(s, a)                      (greedy policy)            (C1)
    pi_new  = (1 - alpha) pi + alpha pi'               (mixture policy)           (C2)
    G       = sum_s rho_pi(s) sum_a pi'(a|s) A_pi(s, a) = (L_pi(pi') - eta(pi))    (C3)
    eta(pi_new) - eta(pi) >= alpha G - 2 eps gamma alpha^2 / (1-gamma)^2 =: f(alpha)   (C4)
    alpha* = argmax_{[0,1]} f = min(1, G (1-gamma)^2 / (4 eps gamma))             (C5)
    f(alpha*) = G^2 (1-gamma)^2 / (8 eps gamma)   when alpha* < 1                  (C6)

with ``eps = max_s |sum_a pi'(a|s) A_pi(s, a)|`` ((B1) of derivations/bounds.md).
In Kakade & Langford's normalisation ``Abar = (1-gamma) G = E_{s~d_pi}[max_a A_pi]``,
(C5) reads ``alpha* = (1-gamma) Abar / (4 gamma eps)`` and (C6) ``Abar^2 / (8 gamma eps)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .evaluation import check_policy_table, evaluate
from .validation import as_float_array, check_positive_float, check_positive_int, \
    check_probabilities

__all__ = ["mixture_policy", "greedy_policy", "cpi_step_size", "CPIStep", "cpi_step",
           "CPIResult", "conservative_policy_iteration"]


def mixture_policy(pi, pi_prime, alpha):
    """``pi_new = (1 - alpha) pi + alpha pi'`` (C2): ``(S, A)``; ``pi, pi_prime: (S, A)``, ``alpha in [0, 1]``.

    In every state, act by ``pi'`` with probability ``alpha`` and by ``pi``
    otherwise. derivations/cpi.md#mixture-policies
    """
    p = check_probabilities("pi rows", as_float_array("pi", pi, ndim=2, allow_complex=True))
    q = check_probabilities("pi_prime rows",
                            as_float_array("pi_prime", pi_prime, ndim=2, allow_complex=True))
    if p.shape != q.shape:
        raise ValueError(f"pi {p.shape} and pi_prime {q.shape} must have the same shape (S, A)")
    try:
        a = float(alpha)
    except Exception as exc:
        raise TypeError(f"alpha must be a real number; got {alpha!r}") from exc
    if not (0.0 <= a <= 1.0):
        raise ValueError(f"alpha must lie in [0, 1]; got {alpha!r}")
    return (1.0 - a) * p + a * q


def greedy_policy(mdp, pi):
    """Deterministic ``pi'(s) = argmax_a A_pi(s, a)`` (C1), ties to the lowest action: ``(S, A)``.

    derivations/cpi.md#the-cpi-step
    """
    pi = check_policy_table(mdp, pi)
    A = np.real(evaluate(mdp, pi).A)
    out = np.zeros(A.shape)
    out[np.arange(A.shape[0]), np.argmax(A, axis=1)] = 1.0
    return out


def cpi_step_size(G, eps, gamma):
    """``alpha* = min(1, G (1-gamma)^2 / (4 eps gamma))`` (C5), ``0`` if ``G <= 0``.

    Maximises the lower bound ``f(alpha)`` of (C4); ``alpha* = 1`` when the
    penalty vanishes (``eps gamma = 0``). derivations/cpi.md#the-step-size-rule
    """
    G, eps, gamma = float(G), float(eps), float(gamma)
    if not (np.isfinite(G) and np.isfinite(eps) and eps >= 0 and 0 <= gamma < 1):
        raise ValueError(f"need finite G, eps >= 0 and gamma in [0, 1); got "
                         f"G={G!r}, eps={eps!r}, gamma={gamma!r}")
    if G <= 0.0:
        return 0.0
    if eps * gamma == 0.0:
        return 1.0
    return min(1.0, G * (1.0 - gamma) ** 2 / (4.0 * eps * gamma))


@dataclass(frozen=True)
class CPIStep:
    """One CPI step (C1)-(C6).

    ``pi_new, pi_prime: (S, A)``; ``alpha`` (C5); ``G`` (C3); ``advantage =
    (1-gamma) G`` (Kakade-Langford's ``Abar``); ``eps``; ``guaranteed =
    f(alpha)`` (C4); ``eta_old``, ``eta_new``; ``improvement = eta_new - eta_old``
    (``>= guaranteed`` by (B1)). derivations/cpi.md#the-cpi-step
    """

    pi_new: np.ndarray
    pi_prime: np.ndarray
    alpha: float
    G: float
    advantage: float
    eps: float
    guaranteed: float
    eta_old: float
    eta_new: float

    @property
    def improvement(self):
        return self.eta_new - self.eta_old


def cpi_step(mdp, pi, pi_prime=None):
    """One CPI step from ``pi: (S, A)`` towards ``pi_prime`` (default greedy (C1)): ``CPIStep``.

    derivations/cpi.md#the-cpi-step
    """
    pi = check_policy_table(mdp, pi)
    if np.iscomplexobj(pi):
        raise TypeError("cpi_step needs a real policy table")
    if mdp.gamma >= 1.0:
        raise ValueError(f"CPI needs gamma < 1; got {mdp.gamma}")
    ev = evaluate(mdp, pi)
    prime = greedy_policy(mdp, pi) if pi_prime is None else \
        check_policy_table(mdp, pi_prime, name="pi_prime")
    abar = np.einsum("sa,sa->s", prime, ev.A)
    G = float(ev.rho @ abar)
    eps = float(np.max(np.abs(abar)))
    gamma = mdp.gamma
    alpha = cpi_step_size(G, eps, gamma)
    guaranteed = alpha * G - 2.0 * eps * gamma * alpha ** 2 / (1.0 - gamma) ** 2
    new = mixture_policy(pi, prime, alpha)
    return CPIStep(pi_new=new, pi_prime=prime, alpha=alpha, G=G, advantage=(1.0 - gamma) * G,
                   eps=eps, guaranteed=float(guaranteed), eta_old=float(ev.eta),
                   eta_new=float(evaluate(mdp, new).eta))


@dataclass(frozen=True)
class CPIResult:
    """Run of ``conservative_policy_iteration``.

    ``policy: (S, A)`` final; ``etas: (K+1,)``; ``alphas, advantages,
    guaranteed: (K,)`` per step; ``n_iter = K``; ``converged`` iff the last
    evaluated ``advantage = E_{s~d_pi}[max_a A_pi(s, a)] <= tol``.
    derivations/cpi.md#the-algorithm
    """

    policy: np.ndarray
    etas: np.ndarray
    alphas: np.ndarray
    advantages: np.ndarray
    guaranteed: np.ndarray
    n_iter: int
    converged: bool
    final_advantage: float


def conservative_policy_iteration(mdp, pi0, *, n_iter=1000, tol=1e-6):
    """CPI with exact advantages: repeat ``cpi_step`` (greedy ``pi'``, step (C5)) from ``pi0: (S, A)``.

    Stops when ``Abar = (1-gamma) G <= tol`` (converged) or after ``n_iter``
    steps. ``eta`` never decreases (C4). Returns ``CPIResult``.
    derivations/cpi.md#the-algorithm
    """
    pi = check_policy_table(mdp, pi0, name="pi0")
    K = check_positive_int("n_iter", n_iter, minimum=0)
    tol = check_positive_float("tol", tol)
    etas, alphas, advs, guar = [float(evaluate(mdp, pi).eta)], [], [], []
    converged = False
    final = np.nan
    for _ in range(K + 1):
        step = cpi_step(mdp, pi)
        final = step.advantage
        if step.advantage <= tol:
            converged = True
            break
        if len(alphas) == K:
            break
        pi = step.pi_new
        etas.append(step.eta_new)
        alphas.append(step.alpha)
        advs.append(step.advantage)
        guar.append(step.guaranteed)
    return CPIResult(policy=np.asarray(pi, dtype=float), etas=np.array(etas),
                     alphas=np.array(alphas), advantages=np.array(advs),
                     guaranteed=np.array(guar), n_iter=len(alphas), converged=converged,
                     final_advantage=float(final))
