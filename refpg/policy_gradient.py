"""Exact objectives and their gradients for tabular-capable policies (SCOPE G, N).

The policy-gradient theorem (derivations/policy_gradient.md#the-policy-gradient-theorem):

    grad eta = sum_s rho_pi(s) sum_a pi(a|s) grad log pi(a|s) Q_pi(s, a)      (PG1)
             = sum_s J_s^T [rho_pi(s) pi(.|s) * A_pi(s, .)]   (softmax policies)  (PG2)

and its finite-horizon, time-indexed version

    grad J_H = sum_{t<H} gamma^t sum_s p_t(s) sum_a pi grad log pi Q_t(s, a)   (PG3)

Both are evaluated with exact ``rho``/``p_t`` and ``Q`` from linear algebra
(refpg.evaluation), so they are exact to rounding; tests compare them with
complex-step derivatives of ``eta(theta)`` and ``J_H(theta)``.
"""
from __future__ import annotations

import numpy as np

from .evaluation import evaluate, evaluate_finite_horizon
from .mdp import FiniteMDP
from .policies.base import SoftmaxPolicy

__all__ = ["policy_table", "eta", "exact_policy_gradient", "finite_horizon_objective",
           "exact_finite_horizon_gradient"]


def _check(mdp, policy):
    if not isinstance(mdp, FiniteMDP):
        raise TypeError(f"mdp must be a FiniteMDP; got {type(mdp).__name__}")
    if not isinstance(policy, SoftmaxPolicy) or policy.n_states is None:
        raise TypeError("policy must be a tabular-capable SoftmaxPolicy (observations are "
                        f"state indices); got {policy!r}")
    if (policy.n_states, policy.n_actions) != (mdp.n_states, mdp.n_actions):
        raise ValueError(f"policy is for (S, A) = ({policy.n_states}, {policy.n_actions}) "
                         f"but mdp has ({mdp.n_states}, {mdp.n_actions})")


def policy_table(mdp, policy, theta):
    """``pi_theta(a | s)`` as an ``(S, A)`` table (complex-safe).

    derivations/policy_gradient.md#setting
    """
    _check(mdp, policy)
    return policy.probs_table(theta)


def eta(mdp, policy, theta):
    """``eta(pi_theta)`` by a linear solve (E3); complex-safe for complex-step checks.

    derivations/evaluation.md#policy-evaluation
    """
    return evaluate(mdp, policy_table(mdp, policy, theta)).eta


def exact_policy_gradient(mdp, policy, theta):
    """``grad_theta eta(pi_theta): (d,)`` by the policy-gradient theorem (PG1)-(PG2).

    derivations/policy_gradient.md#the-policy-gradient-theorem
    """
    pi = policy_table(mdp, policy, theta)
    ev = evaluate(mdp, pi)
    return policy.vjp_table(theta, ev.rho[:, None] * pi * ev.A)


def finite_horizon_objective(mdp, policy, theta, horizon=None):
    """``J_H(pi_theta) = E[sum_{t<H} gamma^t r_t]`` by backward recursion (E8).

    ``horizon`` defaults to ``mdp.horizon``. derivations/evaluation.md#finite-horizon
    """
    return evaluate_finite_horizon(mdp, policy_table(mdp, policy, theta), horizon).J


def exact_finite_horizon_gradient(mdp, policy, theta, horizon=None):
    """``grad_theta J_H: (d,)`` by the time-indexed theorem (PG3).

    derivations/policy_gradient.md#finite-horizon
    """
    pi = policy_table(mdp, policy, theta)
    fh = evaluate_finite_horizon(mdp, pi, horizon)
    H = fh.Q.shape[0]
    weights = mdp.gamma ** np.arange(H)
    cot = np.einsum("t,ts,sa,tsa->sa", weights, fh.p, pi, fh.A)
    return policy.vjp_table(theta, cot)
