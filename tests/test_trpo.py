"""The TRPO step (refpg.trpo, derivations/trpo.md).

Independent routes: the dense Fisher matrix of refpg.natural (``exact_fisher``) and
``np.linalg.solve`` / the pseudo-inverse for the CG direction; the exact ``KL_mean`` and
local approximation of refpg.natural / refpg.identities for the accepted step; per-state
KLs recomputed from log tables for the sampled constraint; the third-order decay of
``KL_mean - 1/2 s^T F s`` for the quadratic model.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from refpg import TabularSoftmaxPolicy, evaluate, random_mdp
from refpg.identities import local_approximation_params
from refpg.linesearch import AcceptanceRule
from refpg.natural import exact_fisher, kl_mean, natural_gradient
from refpg.policy_gradient import exact_policy_gradient
from refpg.sampling import sample_batch
from refpg.surrogate import single_path_surrogate
from refpg.trpo import (TRPOConfig, exact_kl_mean, trpo_step, trpo_step_exact,
                        trpo_step_sampled)


def _setup(seed, S=4, A=3, gamma=0.9, scale=1.0):
    rng = np.random.default_rng(seed)
    mdp = random_mdp(rng, S, A, gamma=gamma)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    return rng, mdp, policy, policy.init_params(rng, scale)


@settings(max_examples=15)
@given(seed=st.integers(0, 2 ** 31), damping=st.sampled_from([1e-3, 0.1, 1.0]))
def test_cg_direction_matches_a_direct_solve_within_its_stated_residual(seed, damping):
    _, mdp, policy, theta = _setup(seed)
    step = trpo_step_exact(mdp, policy, theta, TRPOConfig(damping=damping))
    F = exact_fisher(mdp, policy, theta)
    g = exact_policy_gradient(mdp, policy, theta)
    M = F + damping * np.eye(policy.n_params)
    x_star = np.linalg.solve(M, g)
    assert step.cg.converged
    # ||x - x*|| <= ||r|| / lambda_min(M), plus the dense solve's own rounding
    bound = step.cg.residual_norm / np.linalg.eigvalsh(M)[0]
    slack = 10 * np.linalg.cond(M) * np.finfo(float).eps * np.linalg.norm(x_star)
    assert np.linalg.norm(step.direction - x_star) <= bound + slack
    assert_allclose(step.gradient, g, rtol=1e-13, atol=1e-15)


def test_undamped_direction_is_the_natural_gradient():
    _, mdp, policy, theta = _setup(1)
    step = trpo_step_exact(mdp, policy, theta, TRPOConfig(cg_rtol=1e-12))
    # F is singular (softmax null space); CG from x0 = 0 stays in range(F): F^+ g
    assert_allclose(step.direction, natural_gradient(mdp, policy, theta), rtol=1e-8,
                    atol=1e-10)


@settings(max_examples=20)
@given(seed=st.integers(0, 2 ** 31), max_kl=st.sampled_from([1e-3, 0.01, 0.1, 1.0]),
       direction=st.sampled_from(["old_new", "new_old"]))
def test_accepted_exact_step_satisfies_the_kl_constraint_exactly(seed, max_kl, direction):
    _, mdp, policy, theta = _setup(seed, scale=2.0)
    step = trpo_step_exact(mdp, policy, theta, TRPOConfig(max_kl=max_kl,
                                                          kl_direction=direction))
    assert step.accepted, step.reason
    # recomputed with refpg.natural (old || new) or directly (new || old)
    kl = exact_kl_mean(mdp, policy, theta, step.theta, direction)
    assert kl <= max_kl
    assert_allclose(step.kl, kl, rtol=1e-12, atol=1e-16)
    if direction == "old_new":
        assert_allclose(kl, kl_mean(mdp, policy, theta, step.theta), rtol=1e-13, atol=0)
    # the improvement is the exact local approximation's, refpg.identities (I4)
    L_new = local_approximation_params(mdp, policy, theta, step.theta)
    L_old = local_approximation_params(mdp, policy, theta, theta)
    assert step.improvement > 0
    assert_allclose(step.improvement, L_new - L_old, rtol=1e-9, atol=1e-13)


def test_new_old_kl_is_the_reverse_divergence_and_leaves_the_step_unchanged():
    _, mdp, policy, theta = _setup(2)
    new = theta + 0.3 * np.random.default_rng(0).standard_normal(policy.n_params)
    p, q = policy.probs_table(theta), policy.probs_table(new)
    d = evaluate(mdp, p).d
    assert_allclose(exact_kl_mean(mdp, policy, theta, new, "new_old"),
                    d @ np.sum(q * np.log(q / p), axis=1), rtol=1e-12, atol=0)
    a = trpo_step_exact(mdp, policy, theta, TRPOConfig(kl_direction="old_new"))
    b = trpo_step_exact(mdp, policy, theta, TRPOConfig(kl_direction="new_old"))
    # same Hessian at theta_old: same direction and length (jachiam, spinningup PR #192)
    assert_allclose(a.full_step, b.full_step, rtol=0, atol=0)


@pytest.mark.parametrize("seed", [0, 3])
def test_half_sFs_matches_kl_mean_to_second_order(seed):
    _, mdp, policy, theta = _setup(seed)
    step = trpo_step_exact(mdp, policy, theta, TRPOConfig(max_kl=0.01))
    s = step.full_step
    F = exact_fisher(mdp, policy, theta)
    # (T3): 1/2 s^T F s = delta by construction, F from refpg.natural
    assert_allclose(0.5 * s @ F @ s, 0.01, rtol=1e-10, atol=0)
    assert_allclose(step.quadratic_kl, 0.01, rtol=1e-10, atol=0)
    errs = []
    for eps in (0.2, 0.1, 0.05):
        exact = kl_mean(mdp, policy, theta, theta + eps * s)
        errs.append(exact - 0.5 * eps ** 2 * (s @ F @ s))
        assert abs(errs[-1]) <= 0.5 * 0.5 * eps ** 2 * (s @ F @ s) * eps
    # third-order remainder: halving eps divides the error by ~8 (7..9 allows the eps^4 term)
    ratios = np.array(errs[:-1]) / np.array(errs[1:])
    assert np.all((ratios > 7.0) & (ratios < 9.0)), ratios


def test_step_length_metrics():
    _, mdp, policy, theta = _setup(4)
    F = exact_fisher(mdp, policy, theta)
    lam = 0.1
    for metric in ("fisher", "damped_fisher", "gradient"):
        st_ = trpo_step_exact(mdp, policy, theta, TRPOConfig(damping=lam, step_metric=metric,
                                                             max_kl=0.02))
        x, g = st_.direction, st_.gradient
        denom = {"fisher": x @ F @ x, "damped_fisher": x @ F @ x + lam * x @ x,
                 "gradient": g @ x}[metric]
        assert_allclose(st_.step_length, np.sqrt(2 * 0.02 / denom), rtol=1e-10, atol=0)
        assert_allclose(st_.expected_improvement, g @ st_.full_step, rtol=1e-12, atol=0)
    eps = trpo_step_exact(mdp, policy, theta, TRPOConfig(step_eps=1e-8))
    x = eps.direction
    assert_allclose(eps.step_length, np.sqrt(2 * 0.01 / (x @ F @ x + 1e-8)), rtol=1e-10,
                    atol=0)


def test_sampled_step_satisfies_the_sampled_kl_constraint():
    rng, mdp, policy, theta = _setup(5, S=5, A=3)
    batch = sample_batch(mdp, policy, theta, 60, rng, horizon=15)
    for cfg in (TRPOConfig(max_kl=0.01),
                TRPOConfig(max_kl=0.05, damping=0.1, cg_max_iter=10,
                           step_metric="damped_fisher", fvp_stride=5, shrink=0.8,
                           max_backtracks=9, acceptance=AcceptanceRule(kl_comparison="lt")),
                TRPOConfig(max_kl=0.02, kl_direction="new_old", cg_x0="random")):
        sur = single_path_surrogate(policy, theta, batch, mdp.gamma)
        step = trpo_step_sampled(sur, cfg, rng=np.random.default_rng(0))
        assert step.accepted, step.reason
        # recompute the sampled average KL from log tables: gamma^t-weighted mean over steps
        lo, ln = np.log(policy.probs_table(theta)), np.log(policy.probs_table(step.theta))
        if cfg.kl_direction == "old_new":
            per = np.sum(np.exp(lo) * (lo - ln), axis=1)
        else:
            per = np.sum(np.exp(ln) * (ln - lo), axis=1)
        w = np.where(batch.mask, mdp.gamma ** np.arange(batch.max_steps), 0.0)
        kl = np.sum(w * per[batch.states]) / w.sum()
        assert_allclose(step.kl, kl, rtol=1e-12, atol=1e-16)
        assert kl <= cfg.max_kl if cfg.acceptance.kl_comparison == "le" else kl < cfg.max_kl
        assert step.improvement > 0
        assert_allclose(step.improvement, sur.value(step.theta) - sur.value(theta),
                        rtol=1e-12, atol=1e-15)


def test_no_line_search_takes_the_full_step_and_zero_gradient_takes_none():
    _, mdp, policy, theta = _setup(6)
    st_ = trpo_step_exact(mdp, policy, theta, TRPOConfig(line_search=False, max_kl=0.5))
    assert st_.accepted and st_.line_search is None
    assert_allclose(st_.theta, theta + st_.full_step, rtol=0, atol=0)
    # a one-action MDP: every advantage is exactly 0 (pairwise form, evaluation.md), so the
    # exact gradient is exactly zero and no step is taken
    rng = np.random.default_rng(0)
    mdp1 = random_mdp(rng, 3, 1, gamma=0.9)
    pol1 = TabularSoftmaxPolicy.for_mdp(mdp1)
    th1 = pol1.init_params(rng)
    st_ = trpo_step_exact(mdp1, pol1, th1)
    assert not st_.accepted and "exactly zero" in st_.reason
    assert np.array_equal(st_.theta, th1) and st_.step_length == 0.0
    # F = 0 with a gradient of rounding size (~1e-16, as Q - V used to give here): the
    # step-length denominator x^T F x = 0 is caught, no division, no step
    st_ = trpo_step(th1, np.full(3, 1e-16), lambda v: 0.0 * v, lambda t: 0.0, lambda t: 0.0)
    assert not st_.accepted and "no step" in st_.reason
    assert np.array_equal(st_.theta, th1) and st_.step_length == 0.0
    # an exactly zero gradient: no CG at all
    st_ = trpo_step(th1, np.zeros(3), lambda v: v, lambda t: 0.0, lambda t: 0.0)
    assert not st_.accepted and "exactly zero" in st_.reason and st_.cg is None


def test_invalid_config_raises():
    with pytest.raises(ValueError, match="step_metric"):
        TRPOConfig(step_metric="damped")
    with pytest.raises(ValueError, match="max_kl"):
        TRPOConfig(max_kl=0.0)
    with pytest.raises(ValueError, match="kl_direction"):
        TRPOConfig(kl_direction="forward")
    with pytest.raises(TypeError, match="Generator"):
        _, mdp, policy, theta = _setup(0)
        trpo_step_exact(mdp, policy, theta, TRPOConfig(cg_x0="random"))


def test_config_numbers_are_numbers():
    # found by the session-4 audit: strings passed the checks and failed later; True ran as 1.0
    for bad in (dict(max_kl="0.01"), dict(max_kl=True), dict(damping="0.1"),
                dict(step_eps="1e-8"), dict(line_search="no"), dict(cg_rtol="1e-10")):
        with pytest.raises(TypeError):
            TRPOConfig(**bad)


@pytest.mark.parametrize("scale", [1e155, 1e-170])
@pytest.mark.parametrize("metric", ["fisher", "damped_fisher", "gradient"])
def test_the_full_step_does_not_depend_on_the_scale_of_the_gradient(scale, metric):
    # (T3): x = F^-1 g scales with g and beta with 1/|g|, so beta x does not. Found by the
    # session-4 audit: x^T F x overflowed (1e155) or underflowed (1e-170) and no step was
    # taken. Reference: the same step at scale 1 (and its closed form for the fisher
    # metric: sqrt(2 delta / g^T F^-1 g) F^-1 g); 1e-12: rounding of scale * g through CG.
    rng = np.random.default_rng(2)
    B = rng.standard_normal((4, 4))
    F = B @ B.T + 0.5 * np.eye(4)
    g = rng.standard_normal(4)
    cfg = TRPOConfig(max_kl=0.01, line_search=False, step_metric=metric, damping=0.1)
    step = lambda gg: trpo_step(np.zeros(4), gg, lambda v: F @ v, lambda t: 0.0,  # noqa: E731
                                lambda t: 0.0, cfg)
    base, big = step(g), step(scale * g)
    assert big.accepted
    np.testing.assert_allclose(big.full_step, base.full_step, rtol=1e-12, atol=0)
    if metric == "fisher":
        x = np.linalg.solve(F + 0.1 * np.eye(4), g)
        np.testing.assert_allclose(base.full_step, np.sqrt(0.02 / (x @ F @ x)) * x, rtol=1e-9)
