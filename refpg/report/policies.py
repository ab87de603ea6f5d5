"""Report section 'policies': every softmax policy's derivatives by two routes.

For each softmax policy (tabular; linear with a feature table; linear on
observation vectors; tanh MLP with a feature table; tanh MLP on observation
vectors) on a built-in seeded random MDP:

* score ``grad log pi`` (P1) vs the complex-step derivative of ``log pi``;
* ``grad KL(pi_old || pi_new)`` (P2) vs the complex step of ``KL``;
* Fisher (P3) vs the Hessian of ``KL_mean`` at ``theta_old`` (complex step of
  the analytic KL gradient);
* Fisher-vector product (P4) vs ``F v``;
* exact ``grad eta`` (PG2) and ``grad J_H`` (PG3) vs complex steps of ``eta``
  and ``J_H`` (tabular-capable policies).

See refpg.report; derivations/policies.md.
"""
from __future__ import annotations

import numpy as np

from ..mdp import random_mdp
from ..policies import LinearSoftmaxPolicy, MLPSoftmaxPolicy, TabularSoftmaxPolicy
from ..policy_gradient import (eta, exact_finite_horizon_gradient, exact_policy_gradient,
                               finite_horizon_objective)
from ..testing import complex_step
from . import compare

__all__ = ["checks"]

SECTION = "policies"
#: complex step agrees with an analytic derivative to rounding; 1e-10 leaves a margin.
TOL = 1e-10


def _models():
    rng = np.random.default_rng(2024)
    S, A = 4, 3
    mdp = random_mdp(rng, S, A, gamma=0.95, horizon=10, name="random(S=4, A=3, gamma=0.95)")
    states = np.array([0, 1, 2, 3, 1])
    vectors = rng.normal(size=(5, 4))
    models = [
        ("tabular", TabularSoftmaxPolicy.for_mdp(mdp), states),
        ("linear, features (S, A, 5)", LinearSoftmaxPolicy(rng.normal(size=(S, A, 5))), states),
        ("linear on obs (4,)", LinearSoftmaxPolicy.for_observations(4, A), vectors),
        ("MLP (6,), features (S, 2)",
         MLPSoftmaxPolicy(2, A, (6,), features=rng.normal(size=(S, 2))), states),
        ("MLP (8, 8) on obs (4,), CartPole-sized", MLPSoftmaxPolicy(4, 2, (8, 8)), vectors),
    ]
    out = []
    for name, policy, obs in models:
        theta = rng.normal(size=policy.n_params)
        theta_new = theta + 0.3 * rng.normal(size=policy.n_params)
        v = rng.normal(size=policy.n_params)
        out.append((name, policy, obs, theta, theta_new, v))
    return mdp, out


def checks():
    """Rows of this section: list of refpg.report.Check."""
    mdp, models = _models()
    rows = []
    for name, policy, obs, theta, theta_new, v in models:
        a = np.arange(len(obs)) % policy.n_actions
        w = np.linspace(1.0, 2.0, len(obs))
        w = w / w.sum()

        def row(quantity, r1, r2, x1, x2, eq):
            rows.append(compare(SECTION, f"{quantity} [{name}]", r1, r2, x1, x2, TOL,
                                relative=True, note=f"{eq}; d = {policy.n_params}"))

        row("score grad log pi(a|s)", "J^T (e_a - pi)", "complex step of log pi",
            policy.grad_log_prob(theta, obs, a),
            complex_step(lambda t: policy.log_prob(t, obs, a), theta),
            "(P1) derivations/policies.md#softmax-policies")
        row("grad_new KL(pi_old || pi_new)", "J_new^T (pi_new - pi_old)", "complex step of KL",
            policy.grad_kl(theta, theta_new, obs),
            complex_step(lambda t: policy.kl(theta, t, obs), theta_new), "(P2)")
        F = policy.fisher(theta, obs, weights=w)
        row("Fisher matrix", "J^T (diag pi - pi pi^T) J",
            "Hessian of KL_mean (complex step of grad KL)",
            F, complex_step(lambda t: w @ policy.grad_kl(theta, t, obs), theta), "(P3)")
        row("Fisher-vector product", "J^T (pi * Jv - pi (pi . Jv))", "F @ v",
            policy.fisher_vector_product(theta, v, obs, weights=w), F @ v, "(P4)")
        if policy.n_states is not None:
            row("grad eta", "policy-gradient theorem (PG2)", "complex step of eta",
                exact_policy_gradient(mdp, policy, theta),
                complex_step(lambda t: eta(mdp, policy, t), theta),
                "(PG2) derivations/policy_gradient.md")
            row("grad J_H (H = 10)", "time-indexed theorem (PG3)", "complex step of J_H",
                exact_finite_horizon_gradient(mdp, policy, theta),
                complex_step(lambda t: finite_horizon_objective(mdp, policy, t), theta), "(PG3)")
    return rows
