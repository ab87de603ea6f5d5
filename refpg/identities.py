"""The performance-difference identity and the local approximation (SCOPE N3, N4).

For two stationary policies ``pi`` and ``pi~`` on a finite MDP
(derivations/identities.md):

    eta(pi~) - eta(pi) = E_{tau~pi~}[sum_t gamma^t A_pi(s_t, a_t)]                 (I1)
                       = sum_s rho_pi~(s) sum_a pi~(a|s) A_pi(s, a)                (I2)
    J_H(pi~) - J_H(pi) = E_{tau~pi~}[sum_{t<H} gamma^t A_{pi,t}(s_t, a_t)]         (I3)
    L_pi(pi~) = eta(pi) + sum_s rho_pi(s) sum_a pi~(a|s) A_pi(s, a)                (I4)
    L_pi(pi) = eta(pi),  grad_theta L_{pi_old}(pi_theta)|_{theta_old} = grad eta   (I5)

``rho`` is the UNNORMALISED discounted visitation (CONVENTIONS.md). (I4)
replaces ``rho_pi~`` of (I2) by ``rho_pi``: it agrees with ``eta`` to first
order only, and its Hessian differs (derivations/identities.md#the-local-approximation).
Every routine is complex-safe in the policy tables / parameters.
"""
from __future__ import annotations

import numpy as np

from .evaluation import check_policy_table, evaluate, evaluate_finite_horizon
from .policy_gradient import policy_table

__all__ = ["advantage_gain", "expected_advantage", "performance_difference",
           "finite_horizon_performance_difference", "local_approximation",
           "local_approximation_params", "grad_local_approximation_params"]


def expected_advantage(mdp, pi, pi_tilde):
    """``Abar(s) = sum_a pi~(a|s) A_pi(s, a): (S,)`` for tables ``pi, pi_tilde: (S, A)``.

    The advantage of ``pi`` averaged over the actions of ``pi~``; zero when
    ``pi~ = pi``. Computed as ``sum_a (pi~ - pi) A_pi`` (``sum_a pi A_pi = 0``): the
    difference of nearby tables is exact, while ``sum_a pi~ A_pi`` cancels and loses
    the relative accuracy of small changes.
    derivations/identities.md#the-performance-difference-identity
    """
    pi = check_policy_table(mdp, pi, name="pi")
    pi_tilde = check_policy_table(mdp, pi_tilde, name="pi_tilde")
    return np.einsum("sa,sa->s", pi_tilde - pi, evaluate(mdp, pi).A)


def performance_difference(mdp, pi, pi_tilde):
    """Right side of (I2): ``sum_s rho_pi~(s) sum_a pi~(a|s) A_pi(s, a)``, which equals ``eta(pi~) - eta(pi)``.

    ``pi, pi_tilde: (S, A)``. Computed from ``A_pi`` and ``rho_pi~`` only (never
    from ``eta(pi~)``), so comparing it with ``eta(pi~) - eta(pi)`` tests the identity.
    derivations/identities.md#the-performance-difference-identity
    """
    pi_tilde = check_policy_table(mdp, pi_tilde, name="pi_tilde")
    rho_tilde = evaluate(mdp, pi_tilde).rho
    return rho_tilde @ expected_advantage(mdp, pi, pi_tilde)


def finite_horizon_performance_difference(mdp, pi, pi_tilde, horizon=None):
    """Right side of (I3): ``sum_{t<H} gamma^t sum_s p~_t(s) sum_a pi~_t(a|s) A_{pi,t}(s, a)``.

    ``pi, pi_tilde: (S, A)`` or time-indexed ``(H, S, A)``; ``A_{pi,t}`` is the
    advantage with ``H - t`` steps to go (E6) and ``p~_t`` the distribution of
    ``s_t`` under ``pi~`` (E7). Equals ``J_H(pi~) - J_H(pi)``.
    derivations/identities.md#finite-horizon-version
    """
    fh = evaluate_finite_horizon(mdp, pi, horizon)
    H = fh.A.shape[0]
    fh_tilde = evaluate_finite_horizon(mdp, pi_tilde, H)
    pt = check_policy_table(mdp, pi_tilde, name="pi_tilde", time_indexed=True)
    pts = pt if pt.ndim == 3 else np.broadcast_to(pt, (H,) + pt.shape)
    pis = check_policy_table(mdp, pi, name="pi", time_indexed=True)
    pis = pis if pis.ndim == 3 else np.broadcast_to(pis, (H,) + pis.shape)
    disc = mdp.gamma ** np.arange(H)
    # (pi~ - pi) A: sum_a pi_t A_t = 0, and the difference of nearby tables is exact
    return np.einsum("t,ts,tsa,tsa->", disc, fh_tilde.p, pts - pis, fh.A)


def local_approximation(mdp, pi, pi_tilde):
    """``L_pi(pi~) = eta(pi) + sum_s rho_pi(s) sum_a pi~(a|s) A_pi(s, a)`` (I4).

    ``pi, pi_tilde: (S, A)``; ``rho_pi`` unnormalised. Complex-safe in ``pi_tilde``.
    derivations/identities.md#the-local-approximation
    """
    pi = check_policy_table(mdp, pi, name="pi")
    pi_tilde = check_policy_table(mdp, pi_tilde, name="pi_tilde")
    ev = evaluate(mdp, pi)
    return ev.eta + advantage_gain(ev, pi, pi_tilde)


def advantage_gain(ev, pi, pi_tilde):
    """``L_pi(pi~) - eta(pi) = sum_s rho_pi(s) sum_a (pi~ - pi)(a|s) A_pi(s, a)`` (I4, A form).

    ``ev = evaluate(mdp, pi)`` (``refpg.evaluation.Evaluation``), ``pi, pi_tilde: (S,
    A)`` (not validated here). ``sum_a pi A_pi = 0``, so the difference of nearby
    tables (exact) replaces ``pi~`` and nothing cancels; ``L - eta`` would subtract two
    numbers of size ``eta``. Used by ``local_approximation``, the exact TRPO step's
    line search and the algorithms' records. Complex-safe in ``pi_tilde``.
    derivations/identities.md#the-local-approximation
    """
    return ev.rho @ np.einsum("sa,sa->s", pi_tilde - pi, ev.A)


def local_approximation_params(mdp, policy, theta_old, theta):
    """``L(theta) = L_{pi_theta_old}(pi_theta)`` (I4) as a function of ``theta: (d,)``.

    Complex-safe in ``theta`` (complex-step derivatives).
    derivations/identities.md#the-local-approximation
    """
    return local_approximation(mdp, policy_table(mdp, policy, theta_old),
                               policy_table(mdp, policy, theta))


def grad_local_approximation_params(mdp, policy, theta_old, theta):
    """``grad_theta L(theta) = sum_s rho_old(s) J_s^T [pi_theta * (A_old - pi_theta . A_old)]: (d,)``.

    At ``theta = theta_old`` it equals the policy gradient (I5).
    derivations/identities.md#the-local-approximation
    """
    ev = evaluate(mdp, policy_table(mdp, policy, theta_old))
    pi = policy_table(mdp, policy, theta)
    pa = np.einsum("sa,sa->s", pi, ev.A)
    cot = ev.rho[:, None] * pi * (ev.A - pa[:, None])
    return policy.vjp_table(theta, cot)
