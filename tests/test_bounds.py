"""refpg.bounds: CPI, TRPO Theorem 1 (TV and KL), Achiam et al. 2017, the penalised update.

The true ``eta(pi~)`` (a linear solve) is the independent route against which
every lower bound is checked on hypothesis-generated MDPs and policy pairs
with gamma up to 0.99; divergences are checked against their definitions,
and orderings that are theorems (Pinsker, Jensen) against each other.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from refpg import TabularSoftmaxPolicy, random_mdp
from refpg.bounds import (achiam_bound, achiam_kl_bound, cpi_bound, cpi_decomposition,
                          kl_bound, kl_max_tables, kl_per_state_tables, penalised_update,
                          penalty_coefficient, policy_improvement_bounds, tv_bound, tv_max,
                          tv_per_state)
from refpg.cpi import mixture_policy
from refpg.distributions import kl_categorical
from refpg.evaluation import evaluate
from refpg.identities import local_approximation


def _problem(seed, S, A, gamma, scale=1.0):
    rng = np.random.default_rng(seed)
    mdp = random_mdp(rng, S, A, gamma=gamma)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    return mdp, policy, policy.init_params(rng, scale=scale), rng


pairs = st.tuples(st.integers(0, 2**31 - 1), st.integers(1, 6), st.integers(1, 4),
                  st.sampled_from([0.0, 0.5, 0.9, 0.99]), st.sampled_from([0.3, 1.0, 4.0]),
                  st.sampled_from([1e-3, 0.05, 0.5, 3.0]))


def _pair(case):
    seed, S, A, gamma, scale, size = case
    mdp, policy, theta, rng = _problem(seed, S, A, gamma, scale)
    pi = policy.probs_table(theta)
    pi_t = policy.probs_table(theta + size * rng.standard_normal(theta.size))
    return mdp, pi, pi_t, rng


def _rounding(mdp):
    # eta, L ~ max|r| / (1-gamma); the bound values are sums of a few such terms
    return 1e-11 * (1.0 + np.abs(mdp.r).max() / (1.0 - mdp.gamma))


@given(pairs)
def test_every_bound_holds_and_reports_its_slack(case):
    mdp, pi, pi_t, _ = _pair(case)
    rep = policy_improvement_bounds(mdp, pi, pi_t)
    eta_t = evaluate(mdp, pi_t).eta
    assert rep.eta_new == eta_t
    assert len(rep.bounds) == 5
    for b in rep.bounds:
        assert b.eta_new == eta_t
        assert b.slack == eta_t - b.value
        assert b.value <= eta_t + _rounding(mdp), (b.name, b.value, eta_t)
        assert b.holds
        assert b.penalty >= 0 and np.isfinite(b.eps)
    assert rep.all_hold
    assert "slack" in rep.table()


@given(pairs)
def test_orderings_that_are_theorems(case):
    mdp, pi, pi_t, _ = _pair(case)
    tv, kl, ach, ach_kl = (tv_bound(mdp, pi, pi_t), kl_bound(mdp, pi, pi_t),
                           achiam_bound(mdp, pi, pi_t), achiam_kl_bound(mdp, pi, pi_t))
    r = _rounding(mdp)
    # Pinsker TV^2 <= KL / 2 <= KL: the KL form is never tighter than the TV form
    assert kl.value <= tv.value + r
    # Pinsker per state + Jensen over d_pi: (B5) never tighter than (B4)
    assert ach_kl.value <= ach.value + r
    # eps~ <= 2 TV_max eps and E_d TV <= TV_max: (B4) is never weaker than Theorem 1 (B2)
    assert tv.value <= ach.value + r
    # all share L_pi(pi~)
    L = local_approximation(mdp, pi, pi_t)
    for b in (tv, kl, ach, ach_kl):
        np.testing.assert_allclose(b.value + b.penalty, L, rtol=1e-12, atol=r)


@given(pairs, st.floats(0.0, 1.0))
def test_cpi_bound_holds_for_mixtures(case, alpha):
    mdp, pi, pi_prime, _ = _pair(case)
    b = cpi_bound(mdp, pi, pi_prime, alpha)
    new = mixture_policy(pi, pi_prime, alpha)
    assert b.eta_new == evaluate(mdp, new).eta
    assert b.holds, (b.value, b.eta_new)
    # eps = max_s |E_{a~pi'} A_pi(s, a)| by explicit loops
    A = evaluate(mdp, pi).A
    eps = max(abs(sum(pi_prime[s, a] * A[s, a] for a in range(A.shape[1])))
              for s in range(A.shape[0]))
    np.testing.assert_allclose(b.eps, eps, rtol=1e-12, atol=1e-15)


@given(pairs)
def test_cpi_decomposition_reconstructs_pi_tilde(case):
    _, pi, pi_t, _ = _pair(case)
    alpha, prime = cpi_decomposition(pi, pi_t)
    assert 0.0 <= alpha <= 1.0
    assert np.all(prime >= 0)
    np.testing.assert_allclose(prime.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose((1 - alpha) * pi + alpha * prime, pi_t, rtol=0, atol=1e-12)
    # minimal: with a smaller alpha some entry of pi' would be negative
    if alpha > 1e-6:
        a2 = alpha * (1 - 1e-6)
        assert np.min(pi_t - (1 - a2) * pi) < 0


@given(pairs)
def test_divergences_against_their_definitions(case):
    _, pi, pi_t, _ = _pair(case)
    tv = tv_per_state(pi, pi_t)
    np.testing.assert_allclose(tv, [0.5 * sum(abs(p - q) for p, q in zip(pr, qr))
                                    for pr, qr in zip(pi, pi_t)], rtol=1e-12, atol=1e-16)
    assert tv_max(pi, pi_t) == tv.max()
    kl = kl_per_state_tables(pi, pi_t)
    np.testing.assert_allclose(kl, kl_categorical(np.log(pi), np.log(pi_t)), rtol=1e-10,
                               atol=1e-15)
    assert kl_max_tables(pi, pi_t) == kl.max()
    # Pinsker, state by state
    assert np.all(tv ** 2 <= 0.5 * kl + 1e-15)


def test_kl_with_zero_probabilities():
    p = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    q = np.array([[0.5, 0.25, 0.25], [0.0, 0.5, 0.5]])
    kl = kl_per_state_tables(p, q)
    np.testing.assert_allclose(kl[0], 0.5 * np.log(2.0), rtol=1e-14)   # 0 log 0 = 0
    assert kl[1] == np.inf                                               # q = 0 < p
    assert kl_max_tables(p, q) == np.inf


def test_bounds_with_infinite_kl_are_minus_infinity_not_nan():
    rng = np.random.default_rng(0)
    mdp = random_mdp(rng, 3, 2, gamma=0.9)
    pi = np.full((3, 2), 0.5)
    pi_t = np.array([[1.0, 0.0], [0.5, 0.5], [0.5, 0.5]])
    b = kl_bound(mdp, pi, pi_t)
    assert b.value == -np.inf and b.holds
    rep = policy_improvement_bounds(mdp, pi, pi_t)
    assert rep.all_hold
    assert not any(np.isnan(x.value) for x in rep.bounds)


def test_penalty_coefficient_closed_form():
    rng = np.random.default_rng(1)
    mdp = random_mdp(rng, 4, 3, gamma=0.9)
    pi = np.full((4, 3), 1 / 3)
    eps = np.abs(evaluate(mdp, pi).A).max()
    # C = 4 eps gamma / (1-gamma)^2 = 360 eps for gamma = 0.9
    np.testing.assert_allclose(penalty_coefficient(mdp, pi), 360.0 * eps, rtol=1e-12)


@settings(max_examples=10)
@given(st.integers(0, 2**31 - 1), st.integers(1, 5), st.integers(2, 3),
       st.sampled_from([0.3, 0.9, 0.99]), st.sampled_from([0.3, 2.0]))
def test_penalised_update_never_decreases_eta(seed, S, A, gamma, scale):
    mdp, policy, theta, rng = _problem(seed, S, A, gamma, scale)
    res = penalised_update(mdp, policy, theta)
    r = _rounding(mdp)
    assert res.objective >= res.objective_old - r
    np.testing.assert_allclose(res.objective_old, evaluate(mdp, policy.probs_table(theta)).eta,
                               rtol=1e-12, atol=r)
    assert res.eta_new >= res.eta_old - r                      # monotonic improvement
    assert res.eta_new >= res.objective - r                    # (B3) at the new point
    assert res.kl_max >= 0
    # the reported objective is L - C KL_max at the returned theta, recomputed here
    pi_new = policy.probs_table(res.theta)
    pi_old = policy.probs_table(theta)
    M = local_approximation(mdp, pi_old, pi_new) - res.C * kl_max_tables(pi_old, pi_new)
    np.testing.assert_allclose(res.objective, M, rtol=1e-10, atol=r)
    if res.accepted and res.success:
        # local optimality of the non-smooth M: random small moves do not improve it
        for _ in range(5):
            v = rng.standard_normal(theta.size)
            th = res.theta + 1e-4 * v / np.linalg.norm(v)
            p = policy.probs_table(th)
            Mv = local_approximation(mdp, pi_old, p) - res.C * kl_max_tables(pi_old, p)
            assert Mv <= res.objective + 1e-9 * (1 + abs(res.objective))


def test_penalised_update_improves_strictly_when_gradient_nonzero():
    mdp, policy, theta, _ = _problem(2, 4, 3, 0.9)
    res = penalised_update(mdp, policy, theta)
    assert res.accepted and res.success
    assert res.eta_new > res.eta_old + 1e-6
    assert res.kl_max > 0


def test_validation():
    rng = np.random.default_rng(0)
    mdp = random_mdp(rng, 3, 2, gamma=0.9)
    pi = np.full((3, 2), 0.5)
    with pytest.raises(ValueError, match="pi_tilde"):
        tv_bound(mdp, pi, np.ones((3, 2)))
    with pytest.raises(ValueError, match="same shape"):
        tv_per_state(pi, np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="alpha"):
        cpi_bound(mdp, pi, pi, 1.5)
    with pytest.raises(ValueError, match="gamma"):
        kl_bound(mdp.replace(gamma=1.0, horizon=5), pi, pi)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    with pytest.raises(ValueError, match="C must"):
        penalised_update(mdp, policy, np.zeros(6), C=-1.0)


def _tight_pair(gamma, delta):
    """Two states; derivations/bounds.md#a-pair-on-which-b1-and-b4-are-nearly-attained.

    State 0 (start): action 0 stays (reward 0), action 1 moves to the absorbing state 1
    (reward 1). State 1: action 0 reward 0, action 1 reward -1, both stay. pi always plays
    action 0; pi~ plays action 1 with probability delta in both states.
    """
    from refpg.mdp import FiniteMDP
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[0, 1, 1] = P[1, :, 1] = 1.0
    r = np.array([[0.0, 1.0], [0.0, -1.0]])
    mdp = FiniteMDP(P, r, np.array([1.0, 0.0]), gamma)
    pi = np.array([[1.0, 0.0], [1.0, 0.0]])
    pi_t = np.array([[1 - delta, delta], [1 - delta, delta]])
    return mdp, pi, pi_t


@pytest.mark.parametrize("gamma", [0.5, 0.9, 0.99])
@pytest.mark.parametrize("delta", [1e-2, 1e-3])
def test_bound_is_nearly_attained_on_an_adversarial_pair(gamma, delta):
    mdp, pi, pi_t = _tight_pair(gamma, delta)
    rep = policy_improvement_bounds(mdp, pi, pi_t)
    b1, b2, b3, b4, b5 = rep.bounds
    g, dl = gamma, delta
    # closed forms derived by hand in the note (not by refpg):
    #   L - eta(pi~) = 2 g dl^2 / ((1-g)(1-g+g dl))
    #   penalties: B1 and B4: 2 g dl^2 / (1-g)^2;  B2: 4 g dl^2 / (1-g)^2
    gap = 2 * g * dl ** 2 / ((1 - g) * (1 - g + g * dl))
    np.testing.assert_allclose(rep.L - rep.eta_new, gap, rtol=1e-9, atol=0)
    for b, k in ((b1, 2.0), (b4, 2.0), (b2, 4.0)):
        np.testing.assert_allclose(b.penalty, k * g * dl ** 2 / (1 - g) ** 2, rtol=1e-9, atol=0)
    # used fraction of the penalty (L - eta~) / penalty = (1-g)/(1-g+g dl) -> 1 for B1, B4,
    # and half of that for B2: shrinking B1 or B4 by 1% or B2 by half would break them
    frac = (1 - g) / (1 - g + g * dl)
    for b, f in ((b1, frac), (b4, frac), (b2, frac / 2)):
        np.testing.assert_allclose((rep.L - rep.eta_new) / b.penalty, f, rtol=1e-8, atol=0)
        assert b.holds
    if g * dl / (1 - g) < 0.01:
        assert (rep.L - rep.eta_new) / b4.penalty > 0.99
    # the KL forms are loose here: KL_max = KL_mean = -log(1-dl) ~ dl is first order in dl
    assert b3.slack > 10 * b2.slack and b5.slack > 10 * b4.slack


def test_kl_of_nearby_tables_is_non_negative_and_accurate():
    # found by the session-4 audit: a difference of logs gave KL = -3.3e-17 for rows 1e-12
    # apart (true 2.4e-24), so B3 claimed a bound above the true return. Reference: 60-digit
    # decimal sum of p log(p / q) on the same float64 tables (rows exactly normalised).
    from decimal import Decimal, localcontext

    p = np.array([[0.75, 0.25]])
    q = np.array([[0.75 - 2.0 ** -40, 0.25 + 2.0 ** -40]])
    with localcontext() as ctx:
        ctx.prec = 60
        want = float(sum(Decimal(float(a)) * (Decimal(float(a)) / Decimal(float(b))).ln()
                         for a, b in zip(p[0], q[0])))
    got = kl_per_state_tables(p, q)
    assert got[0] > 0
    np.testing.assert_allclose(got, [want], rtol=1e-10)
