"""Report section 'trpo': importance sampling, CG, the TRPO step, the sampled surrogate.

Each row compares two independent routes on built-in models with fixed seeds
(derivations/trpo.md, derivations/surrogate.md, derivations/cg.md,
derivations/importance.md). See refpg.report.
"""
from __future__ import annotations

import itertools

import numpy as np

from . import Check, compare  # noqa: F401

__all__ = ["checks"]

S_ = "trpo"


def _episodic_chain(rng, n=4, A=2, gamma=0.9):
    """States 0..n-1 move forward by 1 or 2, state n is terminal: every episode ends within n."""
    from ..mdp import FiniteMDP
    S = n + 1
    P = np.zeros((S, A, S))
    for s in range(n):
        for a in range(A):
            w = rng.dirichlet([1.0, 1.0])
            P[s, a, min(s + 1, n)] += w[0]
            P[s, a, min(s + 2, n)] += w[1]
    P[n, :, n] = 1.0
    r = rng.standard_normal((S, A))
    r[n] = 0.0
    rho0 = np.eye(S)[0]
    terminal = np.arange(S) == n
    return FiniteMDP(P=P, r=r, rho0=rho0, gamma=gamma, terminal=terminal, name="chain")


def _importance():
    from ..importance import exact_importance_moments
    p = np.array([0.1, 0.2, 0.3, 0.4])
    q = np.array([0.4, 0.3, 0.2, 0.1])
    f = np.array([1.0, -2.0, 0.5, 3.0])
    n = 3
    w = p / q
    mean = m2 = 0.0
    for tup in itertools.product(range(4), repeat=n):
        t = list(tup)
        prob = float(np.prod(q[t]))
        val = float(np.mean(w[t] * f[t]))
        mean += prob * val
        m2 += prob * val * val
    ex = exact_importance_moments(f, p, q, n=n)
    return [
        compare(S_, "IS estimator mean (n=3)", "all 4^3 sample tuples", "E_p[f] = sum p f",
                mean, float(p @ f), 1e-13, relative=True,
                note="importance sampling is unbiased when q covers p (IS1)"),
        compare(S_, "IS estimator variance (n=3)", "all 4^3 sample tuples", "closed form (IS4)",
                m2 - mean ** 2, ex.variance, 1e-12, relative=True),
    ]


def _cg():
    from ..cg import conjugate_gradient
    from ..natural import exact_fisher
    from ..policies import TabularSoftmaxPolicy
    from ..policy_gradient import exact_policy_gradient
    from ..mdp import random_mdp
    rng = np.random.default_rng(2024)
    mdp = random_mdp(rng, 5, 3, gamma=0.9)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta = policy.init_params(rng, 1.0)
    F = exact_fisher(mdp, policy, theta)
    g = exact_policy_gradient(mdp, policy, theta)
    rows = []
    for lam in (1e-3, 0.1):
        res = conjugate_gradient(lambda v: F @ v, g, damping=lam)
        M = F + lam * np.eye(F.shape[0])
        x_star = np.linalg.solve(M, g)
        bound = res.residual_norm / np.linalg.eigvalsh(M)[0]
        rows.append(compare(S_, f"CG solution, (F + {lam:g} I) x = g", "conjugate gradient",
                            "np.linalg.solve", res.x, x_star,
                            bound + 1e-12 * np.linalg.norm(x_star),
                            note=f"tolerance = stated residual {res.residual_norm:.1e} / "
                                 f"lambda_min; {res.n_iter} iterations (d = {F.shape[0]})"))
    return rows


def _step():
    from ..mdp import random_mdp
    from ..natural import exact_fisher, kl_mean
    from ..policies import TabularSoftmaxPolicy
    from ..trpo import TRPOConfig, trpo_step_exact
    rng = np.random.default_rng(7)
    mdp = random_mdp(rng, 4, 3, gamma=0.9)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta = policy.init_params(rng, 1.0)
    delta = 0.01
    step = trpo_step_exact(mdp, policy, theta, TRPOConfig(max_kl=delta))
    kl = float(kl_mean(mdp, policy, theta, step.theta))
    F = exact_fisher(mdp, policy, theta)
    s = step.full_step
    eps = 0.05
    exact = float(kl_mean(mdp, policy, theta, theta + eps * s))
    quad = 0.5 * eps ** 2 * float(s @ F @ s)
    e1 = exact - quad
    e2 = float(kl_mean(mdp, policy, theta, theta + 0.5 * eps * s)) - 0.125 * eps ** 2 * float(
        s @ F @ s)
    return [
        compare(S_, "exact TRPO step: excess of KL_mean over delta",
                "exact KL_mean (refpg.natural)", "delta", max(kl - delta, 0.0), 0.0, 0.0,
                note=f"accepted={step.accepted}, step fraction {step.step_fraction}, "
                     f"KL_mean = {kl:.6f} <= delta = {delta}"),
        compare(S_, "1/2 s^T F s of the full step", "dense exact Fisher (refpg.natural)",
                "delta (step length T3)", 0.5 * float(s @ F @ s), delta, 1e-10,
                relative=True),
        compare(S_, "KL_mean(theta + e s), e = 0.05", "exact KL_mean",
                "1/2 e^2 s^T F s", exact, quad, 0.05 * eps, relative=True,
                note="second order: relative error O(e)"),
        compare(S_, "KL remainder ratio, e vs e/2", "exact KL_mean - quadratic",
                "8 (third-order remainder)", e1 / e2, 8.0, 0.5,
                note=f"remainders {e1:.2e}, {e2:.2e}"),
    ]


def _surrogate():
    from ..evaluation import evaluate, evaluate_finite_horizon
    from ..identities import local_approximation
    from ..mdp import random_mdp
    from ..moments import enumerate_trajectories
    from ..policies import TabularSoftmaxPolicy
    from ..surrogate import finite_horizon_surrogate, single_path_surrogate
    from ..surrogate_moments import single_path_moments, vine_moments
    rows = []
    rng = np.random.default_rng(3)
    mdp = _episodic_chain(rng)
    H = 4
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta_old = policy.init_params(rng, 1.0)
    theta = theta_old + 0.8 * rng.standard_normal(policy.n_params)
    pi_old = np.asarray(policy.probs_table(theta_old), dtype=float)
    batch, prob = enumerate_trajectories(mdp, pi_old, H)
    fh = evaluate_finite_horizon(mdp, pi_old, H)
    t = np.broadcast_to(np.arange(H), batch.mask.shape)
    base = np.where(batch.mask, fh.V[t, batch.states], 0.0)
    sur = single_path_surrogate(policy, theta_old, batch, mdp.gamma, baseline=base)
    L_eta = local_approximation(mdp, pi_old, policy.probs_table(theta)) - evaluate(mdp,
                                                                                   pi_old).eta
    rows.append(compare(S_, "E[sampled surrogate, A form] (episodic, H=4)",
                        "enumeration of all episodes", "L_pi(pi_theta) - eta(pi) (I4)",
                        float(prob @ sur.per_unit(theta)), float(L_eta), 1e-11, relative=True,
                        note="every episode ends within H: finite = infinite horizon"))
    rng = np.random.default_rng(0)
    mdp = random_mdp(rng, 3, 2, gamma=0.9, n_terminal=1)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta_old = policy.init_params(rng, 1.0)
    theta = theta_old + 0.7 * rng.standard_normal(policy.n_params)
    H = 3
    batch, prob = enumerate_trajectories(mdp, np.asarray(policy.probs_table(theta_old)), H)
    sur = single_path_surrogate(policy, theta_old, batch, mdp.gamma)
    M = float(finite_horizon_surrogate(mdp, policy, theta_old, theta, H, form="q"))
    rows.append(compare(S_, "E[single-path surrogate, Q form] (H=3)",
                        "enumeration of all episodes", "finite-horizon recursion (S2)",
                        float(prob @ sur.per_unit(theta)), M, 1e-12, relative=True))
    sp = single_path_moments(mdp, policy, theta_old, theta, H)
    vine = vine_moments(mdp, policy, theta_old, theta, H, action_mode="all")
    ind = vine_moments(mdp, policy, theta_old, theta, H, action_mode="all",
                       common_random_numbers=False)
    rows.append(compare(
        S_, "E[vine surrogate, all actions, CRN] (H=3)", "enumeration + coupled recursion (V3)",
        "finite-horizon recursion (S2)", vine.mean, M, 1e-12, relative=True,
        note=(f"improvement variance x cost: single path {sp.improvement_variance * sp.cost:.4f}"
              f", vine CRN {vine.improvement_variance * vine.cost:.4f}, vine independent "
              f"{ind.improvement_variance * ind.cost:.4f}")))
    return rows


def checks():
    """Rows of this section: list of refpg.report.Check."""
    rows = []
    for part in (_importance, _cg, _step, _surrogate):
        rows.extend(part())
    return rows
