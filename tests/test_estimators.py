"""Sampled policy-gradient estimators (refpg.estimators, derivations/estimators.md).

Independent routes used here:
* exact means by enumerating every trajectory (refpg.moments.enumerate_trajectories)
  against ``grad J_H`` from the time-indexed policy-gradient theorem (PG3), itself
  checked against the complex-step derivative of ``J_H(theta)`` (backward recursion);
* the closed form (M10) of the uniform-weighted estimator's mean, built from exact
  ``p_t`` and ``Q_t`` (linear algebra, no trajectories);
* the complex-step derivative of the pseudo-loss against its hand-written gradient;
* Monte Carlo with fixed seeds against the exact mean, with bounds from the exact
  covariance.

The off-policy estimators (refpg.off_policy) are tested in tests/test_off_policy.py; the
problems strategy and the two mean comparisons are shared, in tests/estimator_problems.py.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from numpy.testing import assert_allclose

from estimator_problems import assert_exact_mean, assert_mc_mean, mc_problem, problems, z_bound
from refpg import FiniteMDP, TabularSoftmaxPolicy, random_mdp, complex_step
from refpg.batch import Batch
from refpg.evaluation import evaluate_finite_horizon
from refpg.policy_gradient import exact_finite_horizon_gradient, finite_horizon_objective
from refpg.sampling import sample_batch
from refpg import estimators as E
from refpg.moments import (dp_moments, enumerate_trajectories, exact_moments,
                           exact_optimal_baseline, time_indexed_gradient)


# --------------------------------------------------------------------------- G1
@given(problems())
@settings(max_examples=15)
def test_log_derivative_trick_trajectory_score_is_the_sum_of_policy_scores(problem):
    # G1: grad log p_theta(tau) = sum_t grad log pi(a_t|s_t); the right side from the
    # estimator code, the left side by complex step of the full log-likelihood
    # log rho0(s_0) + sum_t [log pi(a_t|s_t) + log P(s_{t+1}|s_t,a_t)] (dynamics included).
    mdp, policy, theta, H = problem
    batch, p = enumerate_trajectories(mdp, policy.probs_table(theta), H)
    idx = np.arange(min(batch.n_episodes, 40))
    sub = batch.replace(**{f: getattr(batch, f)[idx] for f in
                           ("states", "actions", "rewards", "log_probs", "next_states",
                            "terminated", "truncated", "mask")})
    m = sub.mask

    def log_lik(t):
        logp = policy.log_prob(t, np.where(m, sub.states, 0), np.where(m, sub.actions, 0))
        dyn = np.log(np.where(m, mdp.P[sub.states, sub.actions, sub.next_states], 1.0))
        return np.log(mdp.rho0[sub.states[:, 0]]) + np.sum(np.where(m, logp + dyn, 0), axis=1)

    cs = complex_step(log_lik, theta)                       # (n, d)
    ones = np.where(m, 1.0, 0.0)
    # complex step is exact to rounding; 1e-12 of the score magnitude
    assert_allclose(E.score_contributions(sub, policy, theta, ones), cs, rtol=0,
                    atol=1e-12 * (1 + np.max(np.abs(cs))))
    assert_allclose(E.scores(sub, policy, theta).sum(axis=1), cs, rtol=0,
                    atol=1e-12 * (1 + np.max(np.abs(cs))))


# --------------------------------------------------------------------------- unbiasedness
UNBIASED = {
    "reinforce": lambda b, pol, th, g, ctx: E.reinforce_contributions(b, pol, th, g),
    "reinforce, constant b": lambda b, pol, th, g, ctx: E.reinforce_contributions(
        b, pol, th, g, baseline=0.73),
    "reinforce, per-component b": lambda b, pol, th, g, ctx: E.reinforce_contributions(
        b, pol, th, g, baseline=ctx["b_vec"]),
    "reinforce, exact optimal b": lambda b, pol, th, g, ctx: E.reinforce_contributions(
        b, pol, th, g, baseline=ctx["b_opt_rf"]),
    "reward-to-go": lambda b, pol, th, g, ctx: E.reinforce_reward_to_go_contributions(
        b, pol, th, g),
    "reward-to-go, constant b": lambda b, pol, th, g, ctx: (
        E.reinforce_reward_to_go_contributions(b, pol, th, g, baseline=-1.3)),
    "reward-to-go, V_t(s_t)": lambda b, pol, th, g, ctx: (
        E.reinforce_reward_to_go_contributions(b, pol, th, g, state_values=ctx["V"])),
    "reward-to-go, exact optimal b": lambda b, pol, th, g, ctx: (
        E.reinforce_reward_to_go_contributions(b, pol, th, g, baseline=ctx["b_opt_rtg"])),
}
def _context(mdp, policy, theta, H):
    rng = np.random.default_rng(7)
    return {"b_vec": rng.standard_normal(policy.n_params),
            "b_opt_rf": exact_optimal_baseline(mdp, policy, theta, H),
            "b_opt_rtg": exact_optimal_baseline(mdp, policy, theta, H,
                                                estimator="reward_to_go"),
            "V": evaluate_finite_horizon(mdp, policy.probs_table(theta), H).V}


@given(problems())
@settings(max_examples=25)
def test_unbiased_estimators_have_exact_mean_grad_J_H(problem):
    mdp, policy, theta, H = problem
    grad = exact_finite_horizon_gradient(mdp, policy, theta, H)
    # the reference itself: complex step of J_H(theta) by backward recursion (E6)
    cs = complex_step(lambda t: finite_horizon_objective(mdp, policy, t, H), theta)
    assert_allclose(grad, cs, rtol=0, atol=1e-12 * (1 + np.max(np.abs(cs))))
    batch, p = enumerate_trajectories(mdp, policy.probs_table(theta), H)
    ctx = _context(mdp, policy, theta, H)
    for name, fn in UNBIASED.items():
        assert_exact_mean(fn(batch, policy, theta, mdp.gamma, ctx), batch, p, grad, name)


# --------------------------------------------------------------------------- two discountings
@given(problems())
@settings(max_examples=20)
def test_uniform_weighting_mean_is_the_undiscounted_sum_of_time_indexed_terms(problem):
    # G4: E[sum_t psi_t G_t] = sum_t sum_s p_t(s) sum_a pi psi Q_t(s, a) (M10), which is
    # grad J_H only when gamma = 1 (then gamma^t = 1).
    mdp, policy, theta, H = problem
    batch, p = enumerate_trajectories(mdp, policy.probs_table(theta), H)
    uniform = time_indexed_gradient(mdp, policy, theta, H, weighting="uniform")
    for kw in ({}, {"state_values": evaluate_finite_horizon(mdp, policy.probs_table(theta),
                                                            H).V}):
        c = E.reinforce_reward_to_go_contributions(batch, policy, theta, mdp.gamma,
                                                   weighting="uniform", **kw)
        assert_exact_mean(c, batch, p, uniform, f"uniform {kw.keys()}")
    if mdp.gamma == 1.0:
        grad = exact_finite_horizon_gradient(mdp, policy, theta, H)
        assert_allclose(uniform, grad, rtol=0, atol=1e-12 * (1 + np.max(np.abs(grad))))


def test_uniform_weighting_mean_differs_from_grad_J_H_when_gamma_below_one():
    mdp = random_mdp(np.random.default_rng(3), 3, 2, gamma=0.8, horizon=4)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta = policy.init_params(np.random.default_rng(4), scale=1.0)
    uniform = time_indexed_gradient(mdp, policy, theta, weighting="uniform")
    grad = exact_finite_horizon_gradient(mdp, policy, theta)
    assert np.max(np.abs(uniform - grad)) > 1e-2 * np.max(np.abs(grad))


# --------------------------------------------------------------------------- batch baselines
def _tiny():
    mdp = random_mdp(np.random.default_rng(11), 2, 2, gamma=0.8, n_terminal=1, horizon=3)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta = policy.init_params(np.random.default_rng(12), scale=1.0)
    return mdp, policy, theta


def test_average_return_baseline_bias_is_exactly_minus_gradient_over_N():
    mdp, policy, theta = _tiny()
    grad = exact_finite_horizon_gradient(mdp, policy, theta)
    for est, kw in (("reinforce", {}), ("rtg", {}), ("rtg", {"weighting": "uniform"})):
        for N in (2,):
            def mean_b(b, loo=False):
                base = "leave_one_out" if loo else "mean"
                if est == "reinforce":
                    return E.reinforce(b, policy, theta, mdp.gamma, baseline=base)
                return E.reinforce_reward_to_go(b, policy, theta, mdp.gamma, baseline=base, **kw)
            target = grad if kw == {} else time_indexed_gradient(mdp, policy, theta,
                                                                 weighting="uniform")
            incl = exact_moments(mean_b, mdp, policy.probs_table(theta), n_episodes=N,
                                 symmetric=True, gradient=target)
            loo = exact_moments(lambda b: mean_b(b, True), mdp, policy.probs_table(theta),
                                n_episodes=N, symmetric=True, gradient=target)
            # exact tuple enumeration: including the own return shrinks by (N-1)/N
            assert_allclose(incl.bias, -target / N, rtol=0, atol=1e-14)
            assert_allclose(loo.bias, 0.0, rtol=0, atol=1e-14)
            # and the including-own estimator is exactly (N-1)/N times leave-one-out
            assert_allclose(incl.covariance, ((N - 1) / N) ** 2 * loo.covariance, rtol=0,
                            atol=1e-14)


def test_leave_one_out_needs_two_episodes():
    mdp, policy, theta = _tiny()
    b = sample_batch(mdp, policy, theta, 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="leave_one_out"):
        E.reinforce(b, policy, theta, mdp.gamma, baseline="leave_one_out")


# --------------------------------------------------------------------------- optimal baseline
@given(problems(), st.sampled_from(["reinforce", "discounted", "uniform"]))
@settings(max_examples=15)
def test_optimal_constant_baseline_minimises_every_component_variance(problem, kind):
    # B4: Var_k(b) = Var_k(b*) + (b_k - b*_k)^2 E[Z_k^2], checked by enumeration for b = 0,
    # b = J_H (the exact average return), and random constants; b* from the DP route.
    mdp, policy, theta, H = problem
    est = "reinforce" if kind == "reinforce" else "reward_to_go"
    weighting = "discounted" if kind == "reinforce" else kind
    pi = policy.probs_table(theta)
    batch, p = enumerate_trajectories(mdp, pi, H)
    b_star = exact_optimal_baseline(mdp, policy, theta, H, estimator=est, weighting=weighting)

    def contrib(b):
        if est == "reinforce":
            return E.reinforce_contributions(batch, policy, theta, mdp.gamma, baseline=b)
        return E.reinforce_reward_to_go_contributions(batch, policy, theta, mdp.gamma,
                                                      weighting=weighting, baseline=b)

    def var(c):
        mu = p @ c
        return p @ (c - mu) ** 2

    v_star = var(contrib(b_star))
    w = np.ones(H) if est == "reinforce" else (
        mdp.gamma ** np.arange(H) if weighting == "discounted" else np.ones(H))
    Z = E.score_contributions(batch, policy, theta, np.where(batch.mask, w, 0.0))
    EZ2 = p @ Z ** 2
    # the optimal baseline from enumeration directly: E[U_k Z_k] / E[Z_k^2]
    U = contrib(0.0)
    direct = np.divide(p @ (U * Z), EZ2, out=np.zeros_like(EZ2), where=EZ2 > 0)
    assert_allclose(b_star, direct, rtol=1e-10, atol=1e-12 * (1 + np.max(np.abs(direct))))
    J = float(np.real(finite_horizon_objective(mdp, policy, theta, H)))
    rng = np.random.default_rng(0)
    scale = float(np.max(p @ U ** 2)) + 1e-300
    for b in (0.0, J, *rng.normal(0, 3, size=3), rng.normal(0, 3, size=policy.n_params)):
        v = var(contrib(b))
        # exact quadratic identity, rounding relative to E[U^2]
        assert_allclose(v - v_star, (b - b_star) ** 2 * EZ2, rtol=0, atol=1e-11 * scale)
        assert np.all(v >= v_star - 1e-11 * scale)


def test_optimal_baseline_beats_the_leave_one_out_average_return():
    # LOO average baseline with N episodes: Var >= Var(b = E[R]) / N >= Var(b*) / N (per
    # component; closed form M9c vs DP, both exact). The including-own version shrinks
    # the estimator by (N-1)/N: its variance can be SMALLER (it is biased); we report it.
    mdp, policy, theta = _tiny()
    for N in (2, 5):
        opt = dp_moments(mdp, policy, theta, estimator="reinforce", baseline="optimal",
                         n_episodes=N)
        loo = dp_moments(mdp, policy, theta, estimator="reinforce", baseline="leave_one_out",
                         n_episodes=N)
        J = float(finite_horizon_objective(mdp, policy, theta))
        at_mean = dp_moments(mdp, policy, theta, estimator="reinforce", baseline=J, n_episodes=N)
        assert np.all(loo.variance >= at_mean.variance - 1e-14)
        assert np.all(at_mean.variance >= opt.variance - 1e-14)
        incl = dp_moments(mdp, policy, theta, estimator="reinforce", baseline="mean",
                          n_episodes=N)
        assert_allclose(incl.variance, ((N - 1) / N) ** 2 * loo.variance, rtol=1e-13, atol=0)


def test_plug_in_optimal_baseline_equals_exact_when_trajectories_are_equally_likely():
    # deterministic transitions, one start state, uniform policy (theta = 0), no terminal
    # states: every enumerated trajectory has probability (1/A)^H, so the plug-in average
    # over the enumerated batch IS the expectation.
    rng = np.random.default_rng(5)
    S, A, H = 3, 2, 3
    P = np.zeros((S, A, S))
    P[np.arange(S)[:, None], np.arange(A)[None, :], rng.integers(0, S, size=(S, A))] = 1.0
    mdp = FiniteMDP(P=P, r=rng.standard_normal((S, A)), rho0=[1.0, 0, 0], gamma=0.9,
                    horizon=H)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta = np.zeros(S * A)
    batch, p = enumerate_trajectories(mdp, policy.probs_table(theta), H)
    assert_allclose(p, 1.0 / A ** H, rtol=1e-15, atol=0)
    for est, w in (("reinforce", "discounted"), ("reward_to_go", "discounted"),
                   ("reward_to_go", "uniform")):
        plug = E.optimal_baseline(batch, policy, theta, mdp.gamma, estimator=est, weighting=w)
        exact = exact_optimal_baseline(mdp, policy, theta, estimator=est, weighting=w)
        assert_allclose(plug, exact, rtol=1e-12, atol=1e-13)


# --------------------------------------------------------------------------- rtg vs whole
def _anti_correlated_mdp():
    """s0 -> s1 (r=+1) or s2 (r=-1); at s1/s2 the reward undoes it: r = -/+ 1/gamma + 0.1 a.

    The whole return R = 0.1 a_1 gamma hardly varies, but the reward-to-go at t = 1 is
    -/+ 1 + ...: past rewards are a good control variate that reward-to-go throws away.
    """
    g = 0.9
    P = np.zeros((4, 2, 4))
    P[0, 0, 1] = P[0, 1, 2] = 1.0
    P[1, :, 3] = P[2, :, 3] = P[3, :, 3] = 1.0
    r = np.array([[1.0, -1.0], [-1 / g, -1 / g + 0.1], [1 / g, 1 / g + 0.1], [0.0, 0.0]])
    return FiniteMDP(P=P, r=r, rho0=[1, 0, 0, 0], gamma=g,
                     terminal=np.array([False, False, False, True]), horizon=2)


def test_reward_to_go_is_not_always_lower_variance():
    mdp = _anti_correlated_mdp()
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta = np.zeros(8)
    pi = policy.probs_table(theta)
    whole = exact_moments(lambda b: E.reinforce_contributions(b, policy, theta, mdp.gamma),
                          mdp, pi, per_episode=True)
    rtg = exact_moments(lambda b: E.reinforce_reward_to_go_contributions(
        b, policy, theta, mdp.gamma), mdp, pi, per_episode=True)
    # exact enumeration: components of s1, s2 have ~300x the variance under reward-to-go
    assert np.all(rtg.variance[2:6] > 100 * whole.variance[2:6])
    assert np.trace(rtg.covariance) > np.trace(whole.covariance)


@given(problems(linear=False), st.floats(-2.0, 2.0))
@settings(max_examples=15)
def test_reward_to_go_variance_is_lower_when_rewards_are_constant(problem, c):
    # Theorem (derivations/estimators.md#reward-to-go): with r(s, a) = c and no terminal
    # states the coefficients are deterministic, the scores are martingale differences,
    # Var_k = sum_t a_t^2 E[psi_tk^2], and |a_t^rtg| <= |a_t^whole|.
    mdp, policy, theta, H = problem
    mdp = mdp.replace(r=np.full(mdp.r.shape, c), terminal=np.zeros(mdp.n_states, bool))
    whole = dp_moments(mdp, policy, theta, H, estimator="reinforce")
    for weighting in ("discounted", "uniform"):
        rtg = dp_moments(mdp, policy, theta, H, weighting=weighting)
        assert np.all(rtg.variance <= whole.variance * (1 + 1e-12) + 1e-15)


# --------------------------------------------------------------------------- Monte Carlo
@pytest.mark.parametrize("name", list(UNBIASED) + ["uniform", "uniform, V_t(s_t)"])
def test_monte_carlo_means_fall_within_exact_z_bounds(name):
    mdp, policy, theta = mc_problem()
    H = mdp.horizon
    ctx = _context(mdp, policy, theta, H)
    fns = dict(UNBIASED)
    fns["uniform"] = lambda b, pol, th, g, c: E.reinforce_reward_to_go_contributions(
        b, pol, th, g, weighting="uniform")
    fns["uniform, V_t(s_t)"] = lambda b, pol, th, g, c: E.reinforce_reward_to_go_contributions(
        b, pol, th, g, weighting="uniform", state_values=c["V"])
    fn = fns.get(name)
    seed = sum(map(ord, name))                                  # fixed per estimator
    n = 20_000
    batch = sample_batch(mdp, policy, theta, n, np.random.default_rng(seed))
    contrib = fn(batch, policy, theta, mdp.gamma, ctx)
    pi = policy.probs_table(theta)
    exact = exact_moments(lambda b: fn(b, policy, theta, mdp.gamma, ctx), mdp, pi,
                          per_episode=True)
    # the mean from the independent closed forms (PG3 / M10), the covariance by enumeration
    desired = (time_indexed_gradient(mdp, policy, theta, weighting="uniform")
               if name.startswith("uniform") else exact_finite_horizon_gradient(mdp, policy, theta))
    assert_mc_mean(contrib, desired, exact.covariance, name)


_FIELDS = ("states", "actions", "rewards", "log_probs", "next_states", "terminated",
           "truncated", "mask")


@pytest.mark.parametrize("baseline", ["mean", "leave_one_out"])
def test_monte_carlo_batch_baselines_and_power_against_the_wrong_mean(baseline):
    mdp, policy, theta = mc_problem()
    N, K = 2, 3000
    batch = sample_batch(mdp, policy, theta, N * K, np.random.default_rng(31))
    R = batch.rewards @ (mdp.gamma ** np.arange(batch.max_steps))
    Z = E.score_contributions(batch, policy, theta, batch.mask.astype(float))
    # the batch estimator on each pair, computed by the library on 2-row batches for the
    # first 200 pairs (checks the vectorised pair formula below), then vectorised
    pairs = []
    for k in range(200):
        idx = np.arange(N * k, N * k + N)
        sub = batch.replace(**{f: getattr(batch, f)[idx] for f in _FIELDS})
        pairs.append(E.reinforce(sub, policy, theta, mdp.gamma, baseline=baseline))
    Rp, Zp = R.reshape(K, N), Z.reshape(K, N, -1)
    other = Rp[:, ::-1]
    b = other if baseline == "leave_one_out" else Rp.mean(axis=1, keepdims=True)
    vec = np.mean(Zp * (Rp - b)[:, :, None], axis=1)
    assert_allclose(np.array(pairs), vec[:200], rtol=1e-12, atol=1e-14)
    exact = dp_moments(mdp, policy, theta, estimator="reinforce", baseline=baseline,
                       n_episodes=N)
    assert_mc_mean(vec, exact.mean, exact.covariance, baseline)
    if baseline == "mean":
        # power: against the true gradient (bias -grad/2) the same test must fail
        sd = np.sqrt(exact.variance / K)
        dev = np.abs(vec.mean(axis=0) - exact.gradient)
        assert np.any(dev > z_bound(policy.n_params) * sd)


# --------------------------------------------------------------------------- pseudo-loss
@given(problems(), st.sampled_from(["reinforce", "rtg", "uniform", "V", "mean"]))
@settings(max_examples=15)
def test_pseudo_loss_gradient_is_minus_the_estimator(problem, kind):
    mdp, policy, theta, H = problem
    batch = sample_batch(mdp, policy, theta, 7, np.random.default_rng(3), horizon=H)
    kw = {"reinforce": dict(estimator="reinforce"), "rtg": {},
          "uniform": dict(weighting="uniform"), "mean": dict(baseline="mean"),
          "V": dict(state_values=evaluate_finite_horizon(mdp, policy.probs_table(theta), H).V)}
    c = E.estimator_coefficients(batch, mdp.gamma, **kw[kind])
    cs = complex_step(lambda t: E.pseudo_loss(batch, policy, t, c), theta)
    hand = E.pseudo_loss_gradient(batch, policy, theta, c)
    tol = 1e-12 * (1 + np.max(np.abs(cs)))        # complex step: exact to rounding
    assert_allclose(hand, cs, rtol=0, atol=tol)
    if kind == "reinforce":
        est = E.reinforce(batch, policy, theta, mdp.gamma)
    elif kind == "mean":
        est = E.reinforce_reward_to_go(batch, policy, theta, mdp.gamma, baseline="mean")
    else:
        est = E.reinforce_reward_to_go(batch, policy, theta, mdp.gamma,
                                       **{k: v for k, v in kw[kind].items()})
    assert_allclose(-cs, est, rtol=0, atol=tol)
    # step-mean reduction rescales by N / (number of valid steps)
    steps = E.pseudo_loss_gradient(batch, policy, theta, c, reduction="steps")
    n_valid = int(batch.mask.sum())
    if n_valid:
        assert_allclose(steps, hand * batch.n_episodes / n_valid, rtol=1e-13, atol=1e-300)


# --------------------------------------------------------------------------- bad input
def test_bad_batches_raise_value_errors_naming_the_field():
    mdp, policy, theta = _tiny()
    good = sample_batch(mdp, policy, theta, 4, np.random.default_rng(0))
    loose = Batch(**{f: getattr(good, f) for f in _FIELDS})         # no n_states / n_actions
    acts = np.array(loose.actions)
    acts[0, 0] = 7
    with pytest.raises(ValueError, match="batch.actions"):
        E.reinforce(loose.replace(actions=acts), policy, theta, 0.9)
    states = np.array(loose.states)
    states[0, 0] = 5
    with pytest.raises(ValueError, match="batch.states"):
        E.reinforce_reward_to_go(loose.replace(states=states), policy, theta, 0.9)
    rewards = np.array(good.rewards)
    rewards[0, 0] = np.nan
    with pytest.raises(ValueError, match="rewards"):
        good.replace(rewards=rewards)                   # the Batch refuses NaN rewards
    with pytest.raises(TypeError, match="Batch"):
        E.reinforce({"rewards": good.rewards}, policy, theta, 0.9)
    with pytest.raises(ValueError, match="coefficients"):
        E.pseudo_loss(good, policy, theta, np.zeros((4, 1)))
    with pytest.raises(ValueError, match="coefficients"):
        E.pseudo_loss(good, policy, theta, np.full(good.mask.shape, np.nan))
    with pytest.raises(ValueError, match="state_values"):
        E.reinforce_reward_to_go(good, policy, theta, 0.9, state_values=np.zeros((1, 2)))
    with pytest.raises(ValueError, match="baseline"):
        E.reinforce(good, policy, theta, 0.9, baseline=np.zeros(3))
    with pytest.raises(ValueError, match="baseline"):
        E.reinforce(good, policy, theta, 0.9, baseline="avg")
    with pytest.raises(ValueError, match="baseline"):
        E.reinforce(good, policy, theta, 0.9, baseline=float("nan"))
    with pytest.raises(ValueError, match="weighting"):
        E.reinforce_reward_to_go(good, policy, theta, 0.9, weighting="gamma")
    with pytest.raises(ValueError, match="gamma"):
        E.reinforce(good, policy, theta, 1.5)
    with pytest.raises(ValueError, match="theta"):
        E.reinforce(good, policy, theta[:-1], 0.9)


def test_outputs_are_float64():
    mdp, policy, theta = _tiny()
    b = sample_batch(mdp, policy, theta, 5, np.random.default_rng(0))
    for out in (E.reinforce(b, policy, theta, 0.9), E.reinforce_reward_to_go(b, policy, theta, 0.9),
                E.optimal_baseline(b, policy, theta, 0.9)):
        assert out.dtype == np.float64 and out.shape == (policy.n_params,)


def test_a_batch_without_any_step_gives_zero_estimates():
    # every episode starts in a terminal state (allowed): no step, so every estimator is the
    # zero vector, and an exact mean over pairs of episodes (which enumerates the empty pair)
    # equals the dynamic-programming route (found by the session-4 audit: it crashed)
    mdp = random_mdp(np.random.default_rng(0), 3, 2, gamma=0.9, n_terminal=1, horizon=2)
    mdp = mdp.replace(rho0=[0.4, 0.4, 0.2])                 # state 2 is terminal
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta = policy.init_params(np.random.default_rng(1), scale=1.0)
    empty = sample_batch(mdp, policy, theta, 3, np.random.default_rng(0), start_states=[2, 2, 2])
    assert not empty.mask.any()
    zero = np.zeros(policy.n_params)
    for est in (E.reinforce(empty, policy, theta, 0.9),
                E.reinforce_reward_to_go(empty, policy, theta, 0.9),
                E.reinforce(empty, policy, theta, 0.9, baseline="leave_one_out"),
                E.optimal_baseline(empty, policy, theta, 0.9),
                E.pseudo_loss_gradient(empty, policy, theta, np.zeros(empty.mask.shape))):
        np.testing.assert_array_equal(est, zero)
    assert E.scores(empty, policy, theta).shape == empty.mask.shape + (policy.n_params,)
    pi = policy.probs_table(theta)
    en = exact_moments(lambda b: E.reinforce(b, policy, theta, 0.9, baseline="mean"), mdp, pi,
                       n_episodes=2, symmetric=True)
    dp = dp_moments(mdp, policy, theta, estimator="reinforce", baseline="mean", n_episodes=2)
    # two exact routes: enumeration of pairs vs the closed form (M9c), 1e-12 relative
    assert_allclose(en.mean, dp.mean, rtol=1e-12, atol=1e-15)
    assert_allclose(en.covariance, dp.covariance, rtol=1e-12, atol=1e-15)


def test_policy_and_state_values_must_match_the_batch():
    mdp, policy, theta = _tiny()                 # S = 2, A = 2
    good = sample_batch(mdp, policy, theta, 4, np.random.default_rng(0))
    other = TabularSoftmaxPolicy(2, 3)
    with pytest.raises(ValueError, match="n_actions"):
        E.reinforce(good, other, other.init_params(np.random.default_rng(0)), 0.9)
    V = evaluate_finite_horizon(mdp, policy.probs_table(theta)).V      # (H + 1, S)
    E.reinforce_reward_to_go(good, policy, theta, 0.9, state_values=V)
    with pytest.raises(ValueError, match="state_values"):
        E.reinforce_reward_to_go(good, policy, theta, 0.9, state_values=np.hstack([V, V]))
    with pytest.raises(TypeError, match="gamma"):
        E.reinforce(good, policy, theta, True)
