"""Report section 'estimators': every estimator's exact mean and variance, two routes each.

On a small built-in MDP (``random_mdp`` seed 2024: S = 3, A = 2, one terminal state,
H = 4, gamma = 0.9, tabular softmax, theta from seed 2025):

* exact mean by enumerating every trajectory (refpg.moments.exact_moments) against the
  exact gradient ``grad J_H`` (PG3) or, for the estimators that are not unbiased, the
  closed form of their mean (M10); the note gives the exact trace of the covariance and
  the largest per-component variance;
* dynamic programming (M4-M9) against enumeration, mean and covariance;
* the average-return baseline with N = 2 (on a 2-state MDP, H = 2, seed 2028): the
  closed form (M9c) against tuple enumeration, and its exact bias ``-grad J_H / N``;
* the pseudo-loss and importance-sampled surrogate gradients against complex step.

See derivations/estimators.md and derivations/moments.md.
"""
from __future__ import annotations

import numpy as np

from . import Check, compare  # noqa: F401  (Check: the row type returned)

__all__ = ["checks"]

SECTION = "estimators"
TOL = 1e-12


def _problem():
    from ..mdp import random_mdp
    from ..policies import TabularSoftmaxPolicy

    mdp = random_mdp(np.random.default_rng(2024), 3, 2, gamma=0.9, n_terminal=1, horizon=4,
                     name="random(S=3, A=2, 1 terminal)")
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta = policy.init_params(np.random.default_rng(2025), scale=1.0)
    return mdp, policy, theta


def _note(m):
    return (f"exact tr Cov = {np.trace(m.covariance):.4g}, max Var_k = {np.max(m.variance):.4g}"
            + (f", max|bias| = {np.max(np.abs(m.bias)):.3g}" if m.bias is not None else ""))


def checks():
    """Rows of this section: list of refpg.report.Check."""
    from .. import estimators as E
    from .. import off_policy as OP
    from ..evaluation import evaluate_finite_horizon
    from ..moments import (dp_moments, exact_moments, exact_optimal_baseline,
                           time_indexed_gradient)
    from ..policy_gradient import exact_finite_horizon_gradient
    from ..testing import complex_step

    mdp, policy, theta = _problem()
    H, g = mdp.horizon, mdp.gamma
    pi = policy.probs_table(theta)
    grad = exact_finite_horizon_gradient(mdp, policy, theta)
    uniform = time_indexed_gradient(mdp, policy, theta, weighting="uniform")
    V = evaluate_finite_horizon(mdp, pi, H).V
    b_rf = exact_optimal_baseline(mdp, policy, theta)
    b_rtg = exact_optimal_baseline(mdp, policy, theta, estimator="reward_to_go")
    b_unif = exact_optimal_baseline(mdp, policy, theta, estimator="reward_to_go",
                                    weighting="uniform")
    rows = []
    # (label, sampled estimator, dp kwargs, reference mean, reference name)
    cases = [
        ("REINFORCE (G2)", lambda b: E.reinforce_contributions(b, policy, theta, g),
         dict(estimator="reinforce"), grad, "PG3"),
        ("REINFORCE, optimal b (G5)",
         lambda b: E.reinforce_contributions(b, policy, theta, g, baseline=b_rf),
         dict(estimator="reinforce", baseline="optimal"), grad, "PG3"),
        ("reward-to-go gamma^t (G3)",
         lambda b: E.reinforce_reward_to_go_contributions(b, policy, theta, g),
         dict(), grad, "PG3"),
        ("reward-to-go gamma^t, V_t(s_t) (G5)",
         lambda b: E.reinforce_reward_to_go_contributions(b, policy, theta, g, state_values=V),
         dict(state_values=V), grad, "PG3"),
        ("reward-to-go gamma^t, optimal b (G5)",
         lambda b: E.reinforce_reward_to_go_contributions(b, policy, theta, g, baseline=b_rtg),
         dict(baseline="optimal"), grad, "PG3"),
        ("reward-to-go uniform (G4)",
         lambda b: E.reinforce_reward_to_go_contributions(b, policy, theta, g,
                                                          weighting="uniform"),
         dict(weighting="uniform"), uniform, "M10 closed form"),
        ("reward-to-go uniform, optimal b (G4)",
         lambda b: E.reinforce_reward_to_go_contributions(b, policy, theta, g,
                                                          weighting="uniform", baseline=b_unif),
         dict(weighting="uniform", baseline="optimal"), uniform, "M10 closed form"),
    ]
    for label, fn, dkw, ref, ref_name in cases:
        em = exact_moments(fn, mdp, pi, per_episode=True, gradient=grad)
        dm = dp_moments(mdp, policy, theta, **dkw)
        rows.append(compare(SECTION, f"E[{label}]", "enumeration", ref_name, em.mean, ref,
                            TOL, relative=True, note=_note(em)))
        rows.append(compare(SECTION, f"E[{label}]", "dynamic programming", "enumeration",
                            dm.mean, em.mean, TOL, relative=True))
        rows.append(compare(SECTION, f"Cov[{label}]", "dynamic programming", "enumeration",
                            dm.covariance, em.covariance, TOL, relative=True))

    # off-policy (G6): behaviour = target with perturbed logits
    theta_b = theta + 0.7 * np.random.default_rng(2026).standard_normal(theta.size)
    pib = policy.probs_table(theta_b)
    for corr, est in (("trajectory", "reinforce"), ("per_decision", "reward_to_go")):
        em = exact_moments(lambda b: OP.off_policy_contributions(
            b, policy, theta, g, correction=corr, estimator=est), mdp, pib, per_episode=True,
            gradient=grad)
        rows.append(compare(SECTION, f"E[off-policy IS, {corr} (G6)]", "enumeration under pi_b",
                            "PG3", em.mean, grad, TOL, relative=True, note=_note(em)))
    em = exact_moments(lambda b: OP.off_policy_contributions(b, policy, theta, g,
                                                             correction="first_order"),
                       mdp, pib, per_episode=True, gradient=grad)
    closed = time_indexed_gradient(mdp, policy, theta, behaviour=pib)
    rows.append(compare(SECTION, "E[off-policy first-order (G6)]", "enumeration under pi_b",
                        "M10 closed form", em.mean, closed, TOL, relative=True,
                        note=_note(em) + " (biased: drops p_t^theta / p_t^b)"))

    # average-return baseline, N = 2 (batch-level): a 2-state MDP, H = 2, keeps the
    # tuples few (M = 10 trajectories, 55 multisets)
    from ..mdp import random_mdp
    from ..policies import TabularSoftmaxPolicy

    short = random_mdp(np.random.default_rng(2028), 2, 2, gamma=0.9, n_terminal=1, horizon=2)
    pol2 = TabularSoftmaxPolicy.for_mdp(short)
    th2 = pol2.init_params(np.random.default_rng(2029), scale=1.0)
    grad2 = exact_finite_horizon_gradient(short, pol2, th2)
    for base in ("mean", "leave_one_out"):
        en = exact_moments(lambda b: E.reinforce(b, pol2, th2, g, baseline=base), short,
                           pol2.probs_table(th2), n_episodes=2, symmetric=True, gradient=grad2)
        cf = dp_moments(short, pol2, th2, estimator="reinforce", baseline=base, n_episodes=2)
        rows.append(compare(SECTION, f"Cov[REINFORCE, {base} b, N=2]", "closed form M9c",
                            "tuple enumeration", cf.covariance, en.covariance, TOL,
                            relative=True, note=_note(en) + f" (S=2, H=2, M={en.n_trajectories})"))
        want = -grad2 / 2 if base == "mean" else np.zeros_like(grad2)
        rows.append(compare(SECTION, f"bias[REINFORCE, {base} b, N=2]", "tuple enumeration",
                            "-grad/N" if base == "mean" else "0", en.bias, want, TOL,
                            relative=False))

    # pseudo-loss (G7) on a sampled batch
    from ..sampling import sample_batch

    batch = sample_batch(mdp, policy, theta, 16, np.random.default_rng(2027))
    c = E.estimator_coefficients(batch, g)
    cs = complex_step(lambda t: E.pseudo_loss(batch, policy, t, c), theta)
    rows.append(compare(SECTION, "grad pseudo-loss (G7)", "hand-written", "complex step",
                        E.pseudo_loss_gradient(batch, policy, theta, c), cs, TOL, relative=True))
    rows.append(compare(SECTION, "-grad pseudo-loss = estimator (G7)", "complex step",
                        "reward-to-go estimator", -cs,
                        E.reinforce_reward_to_go(batch, policy, theta, g), TOL, relative=True))
    cs = complex_step(lambda t: OP.importance_sampled_surrogate(batch, policy, t, c), theta)
    rows.append(compare(SECTION, "grad IS surrogate at theta_old (G7)", "complex step",
                        "on-policy estimator", cs,
                        E.reinforce_reward_to_go(batch, policy, theta, g), TOL, relative=True))
    return rows
