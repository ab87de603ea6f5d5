"""refpg.cpi: mixture policies and conservative policy iteration (SCOPE N5).

Independent routes: the true ``eta`` of each mixture from a linear solve, the
step-size rule against a dense grid maximisation of the lower bound, the
greedy policy against explicit loops, optimal values from policy iteration.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from refpg import TabularSoftmaxPolicy, random_mdp
from refpg.cpi import (conservative_policy_iteration, cpi_step, cpi_step_size, greedy_policy,
                       mixture_policy)
from refpg.evaluation import evaluate
from refpg.identities import local_approximation


def _problem(seed, S, A, gamma, scale=1.0):
    rng = np.random.default_rng(seed)
    mdp = random_mdp(rng, S, A, gamma=gamma)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    return mdp, policy.probs_table(policy.init_params(rng, scale=scale)), rng


cases = st.tuples(st.integers(0, 2**31 - 1), st.integers(1, 6), st.integers(1, 4),
                  st.sampled_from([0.0, 0.5, 0.9, 0.99]), st.sampled_from([0.3, 2.0]))


def test_mixture_policy_is_the_convex_combination_and_validates():
    p = np.array([[0.2, 0.8], [1.0, 0.0]])
    q = np.array([[0.6, 0.4], [0.5, 0.5]])
    np.testing.assert_allclose(mixture_policy(p, q, 0.25), [[0.3, 0.7], [0.875, 0.125]],
                               rtol=1e-15)   # by hand: 0.75 p + 0.25 q
    assert np.array_equal(mixture_policy(p, q, 0.0), p)
    assert np.array_equal(mixture_policy(p, q, 1.0), q)
    with pytest.raises(ValueError, match="alpha"):
        mixture_policy(p, q, -0.1)
    with pytest.raises(ValueError, match="alpha"):
        mixture_policy(p, q, float("nan"))
    with pytest.raises(ValueError, match="same shape"):
        mixture_policy(p, q[:1], 0.5)
    with pytest.raises(ValueError, match="pi_prime"):
        mixture_policy(p, q * 2, 0.5)


@given(cases)
def test_greedy_policy_against_loops(case):
    seed, S, A, gamma, scale = case
    mdp, pi, _ = _problem(seed, S, A, gamma, scale)
    Aadv = evaluate(mdp, pi).A
    g = greedy_policy(mdp, pi)
    for s in range(S):
        best = max(range(A), key=lambda a: (Aadv[s, a], -a))
        assert g[s, best] == 1.0 and g[s].sum() == 1.0


@given(cases, st.floats(0.0, 1.0))
def test_mixture_moves_L_linearly_and_eta_by_the_bound(case, alpha):
    seed, S, A, gamma, scale = case
    mdp, pi, _ = _problem(seed, S, A, gamma, scale)
    step = cpi_step(mdp, pi)
    new = mixture_policy(pi, step.pi_prime, alpha)
    ev = evaluate(mdp, pi)
    # (C3): L(pi_new) - eta(pi) = alpha G, since sum_a pi A_pi = 0
    np.testing.assert_allclose(local_approximation(mdp, pi, new) - ev.eta, alpha * step.G,
                               rtol=1e-10, atol=1e-12 * (1 + np.abs(mdp.r).max() / (1 - gamma)))
    f = alpha * step.G - 2 * step.eps * gamma * alpha ** 2 / (1 - gamma) ** 2
    assert evaluate(mdp, new).eta - ev.eta >= f - 1e-11 * (1 + abs(ev.eta))   # (C4)


@given(st.floats(-1.0, 10.0), st.floats(1e-3, 10.0), st.sampled_from([0.0, 0.3, 0.9, 0.99]))
def test_step_size_maximises_the_lower_bound_on_a_grid(G, eps, gamma):
    alpha = cpi_step_size(G, eps, gamma)
    assert 0.0 <= alpha <= 1.0
    grid = np.linspace(0.0, 1.0, 100001)
    f = lambda a: a * G - 2 * eps * gamma * a ** 2 / (1 - gamma) ** 2
    # the grid's spacing 1e-5 bounds its own suboptimality by |f'| 1e-5
    assert f(alpha) >= f(grid).max() - 1e-12 * (1 + abs(G))
    slope = abs(G) + 4 * eps * gamma / (1 - gamma) ** 2
    assert f(alpha) <= f(grid).max() + slope * 1e-5


def test_step_size_closed_form():
    # alpha* = G (1-gamma)^2 / (4 eps gamma) = 1 * 0.01 / (4 * 2 * 0.9), by hand
    np.testing.assert_allclose(cpi_step_size(1.0, 2.0, 0.9), 0.01 / 7.2, rtol=1e-14)
    assert cpi_step_size(-1.0, 2.0, 0.9) == 0.0
    assert cpi_step_size(1.0, 0.0, 0.9) == 1.0
    assert cpi_step_size(1.0, 2.0, 0.0) == 1.0
    with pytest.raises(ValueError):
        cpi_step_size(1.0, -2.0, 0.9)


@given(cases)
def test_cpi_step_records_are_consistent(case):
    seed, S, A, gamma, scale = case
    mdp, pi, _ = _problem(seed, S, A, gamma, scale)
    step = cpi_step(mdp, pi)
    ev = evaluate(mdp, pi)
    abar = (step.pi_prime * ev.A).sum(axis=1)
    np.testing.assert_allclose(step.G, ev.rho @ abar, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(step.advantage, ev.d @ abar, rtol=1e-12, atol=1e-14)
    assert step.eps == np.abs(abar).max()
    assert step.improvement >= step.guaranteed - 1e-11 * (1 + abs(ev.eta))
    assert step.guaranteed >= 0.0
    if 0 < step.alpha < 1:
        # (C6): the guaranteed improvement in closed form
        np.testing.assert_allclose(step.guaranteed,
                                   step.G ** 2 * (1 - gamma) ** 2 / (8 * step.eps * gamma),
                                   rtol=1e-10)


@settings(max_examples=6)
@given(st.integers(0, 2**31 - 1), st.integers(2, 5), st.integers(2, 3),
       st.sampled_from([0.5, 0.8, 0.95]))
def test_cpi_is_monotone_with_the_guaranteed_improvement(seed, S, A, gamma):
    mdp, pi, _ = _problem(seed, S, A, gamma, 1.0)
    run = conservative_policy_iteration(mdp, pi, n_iter=100, tol=1e-9)
    r = 1e-11 * (1 + np.abs(mdp.r).max() / (1 - gamma))
    # every realised improvement (two linear solves) is at least the bound's f(alpha*)
    assert np.all(np.diff(run.etas) >= run.guaranteed - r)
    assert np.all(run.guaranteed >= 0)
    assert run.n_iter == len(run.alphas) == len(run.etas) - 1
    np.testing.assert_allclose(run.etas[-1], evaluate(mdp, run.policy).eta, rtol=1e-12,
                               atol=r)


def test_cpi_converges_and_its_stopping_rule_bounds_the_suboptimality():
    from refpg.planning import policy_iteration
    mdp, pi, _ = _problem(6, 4, 3, 0.6)
    run = conservative_policy_iteration(mdp, pi, n_iter=5000, tol=1e-4)
    assert run.converged, run.final_advantage
    pi_star = policy_iteration(mdp).pi
    d_star = evaluate(mdp, pi_star).d
    d = evaluate(mdp, run.policy).d
    # performance difference with pi~ = pi*: eta* - eta = sum rho* sum pi* A_pi
    #   <= sum_s rho*(s) max_a A_pi(s, a) <= max_s (d*/d) Abar / (1-gamma)
    gap = evaluate(mdp, pi_star).eta - run.etas[-1]
    bound = np.max(d_star / d) * run.final_advantage / (1 - mdp.gamma)
    assert -1e-12 <= gap <= bound + 1e-12, (gap, bound)


def test_cpi_stops_immediately_at_an_optimal_policy():
    from refpg.planning import policy_iteration
    mdp, _, _ = _problem(3, 4, 3, 0.9)
    pi_star = policy_iteration(mdp).pi
    run = conservative_policy_iteration(mdp, pi_star, n_iter=10)
    assert run.converged and run.n_iter == 0
    np.testing.assert_array_equal(run.policy, pi_star)


def test_validation():
    mdp, pi, _ = _problem(0, 3, 2, 0.9)
    with pytest.raises(ValueError, match="tol"):
        conservative_policy_iteration(mdp, pi, tol=0.0)
    with pytest.raises(ValueError, match="pi0"):
        conservative_policy_iteration(mdp, pi[:2])
    with pytest.raises(ValueError, match="gamma"):
        cpi_step(mdp.replace(gamma=1.0, horizon=4), pi)
