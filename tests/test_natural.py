"""refpg.natural: Fisher matrix, KL, natural gradient, tabular NPG (SCOPE N1, N2).

Independent routes: scores by complex step of ``log pi`` (never the policy's
hand-written score), Hessians by complex step of analytic gradients and by
central differences of complex-step gradients, the pseudo-inverse against the
closed form of derivations/natural.md, and the NPG rate of Agarwal et al.
against optimal values from policy iteration.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from refpg import TabularSoftmaxPolicy, eta, exact_policy_gradient, random_mdp
from refpg.evaluation import evaluate
from refpg.natural import (LinearReparametrisedPolicy, exact_fisher,
                           exact_fisher_vector_product, grad_kl_mean, kl_max, kl_mean,
                           kl_per_state, natural_gradient, natural_gradient_result,
                           tabular_npg, tabular_npg_direction, tabular_npg_update,
                           tabular_softmax_null_space)
from refpg.testing import central_difference, complex_step


def _problem(seed, S, A, gamma, scale=1.0):
    rng = np.random.default_rng(seed)
    mdp = random_mdp(rng, S, A, gamma=gamma)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    return mdp, policy, policy.init_params(rng, scale=scale), rng


problems = st.tuples(st.integers(0, 2**31 - 1), st.integers(1, 5), st.integers(2, 4),
                     st.sampled_from([0.0, 0.5, 0.9, 0.99]))


def _optimal_eta(mdp):
    """eta(pi*) by policy iteration (refpg.planning if present, else a local loop)."""
    try:
        from refpg.planning import policy_iteration
        return float(mdp.rho0 @ policy_iteration(mdp).V)
    except ImportError:  # pragma: no cover - planning not landed
        S, A = mdp.n_states, mdp.n_actions
        act = np.zeros(S, dtype=int)
        for _ in range(1000):
            pi = np.eye(A)[act]
            Q = evaluate(mdp, pi).Q
            new = np.where(Q[np.arange(S), act] >= Q.max(axis=1) - 1e-12, act, Q.argmax(axis=1))
            if np.array_equal(new, act):
                break
            act = new
        return float(evaluate(mdp, np.eye(A)[act]).eta)


# --- the Fisher matrix (N1) -----------------------------------------------------------

@given(problems)
def test_exact_fisher_equals_expected_outer_product_of_complex_step_scores(case):
    seed, S, A, gamma = case
    mdp, policy, theta, _ = _problem(seed, S, A, gamma)
    # score of every (s, a) by complex step of log pi: independent of grad_log_prob
    scores = complex_step(lambda t: policy.log_probs_table(t), theta)      # (S, A, d)
    pi = policy.probs_table(theta)
    d = evaluate(mdp, pi).d
    F_ref = sum(d[s] * pi[s, a] * np.outer(scores[s, a], scores[s, a])
                for s in range(S) for a in range(A))
    F = exact_fisher(mdp, policy, theta)
    # both exact in float64: complex step is exact to ~1e-16 relative
    np.testing.assert_allclose(F, F_ref, rtol=1e-10, atol=1e-13 * np.abs(F_ref).max())
    np.testing.assert_allclose(F, F.T, rtol=0, atol=1e-15 * np.abs(F).max())
    assert F.dtype == np.float64


@given(problems, st.integers(0, 2**31 - 1))
def test_fisher_vector_product_equals_matrix_product(case, vseed):
    seed, S, A, gamma = case
    mdp, policy, theta, _ = _problem(seed, S, A, gamma)
    v = np.random.default_rng(vseed).standard_normal(policy.n_params)
    F = exact_fisher(mdp, policy, theta)
    Fv = exact_fisher_vector_product(mdp, policy, theta, v)
    # matrix-free (P4) vs dense einsum: same sums in different order
    np.testing.assert_allclose(Fv, F @ v, rtol=1e-12, atol=1e-14 * np.abs(F).max()
                               * np.abs(v).sum())
    # complex fallback route agrees too
    Fv_c = exact_fisher_vector_product(mdp, policy, theta, v.astype(complex))
    np.testing.assert_allclose(np.real(Fv_c), Fv, rtol=1e-12,
                               atol=1e-14 * np.abs(F).max() * np.abs(v).sum())


# --- KL and F = Hess KL_mean (N2) ---------------------------------------------------------

@given(problems)
def test_fisher_is_hessian_of_kl_mean_at_theta_old(case):
    seed, S, A, gamma = case
    mdp, policy, theta, _ = _problem(seed, S, A, gamma)
    F = exact_fisher(mdp, policy, theta)
    # route 2: complex step of the analytic gradient (P2) of KL_mean, at theta_new = theta_old
    H_cs = complex_step(lambda t: grad_kl_mean(mdp, policy, theta, t), theta)
    np.testing.assert_allclose(H_cs, F, rtol=1e-10, atol=1e-12 * np.abs(F).max())
    # route 3: a directional central difference of the complex-step gradient of KL_mean
    # itself (no P2): H u ~ [grad(theta + h u) - grad(theta - h u)] / 2h; truncation
    # h^2 f'''/6 with h ~ 1e-5 and rounding eps/h: ~1e-9 absolute on O(1) entries
    u = np.random.default_rng(seed + 1).standard_normal(theta.size)
    Hu = central_difference(
        lambda x: complex_step(lambda w: kl_mean(mdp, policy, theta, w), theta + x[0] * u),
        np.zeros(1))[:, 0]
    np.testing.assert_allclose(Hu, F @ u, rtol=0, atol=1e-7 * (1 + np.abs(u).sum()))


def test_kl_is_half_quadratic_form_to_second_order_with_cubic_error():
    mdp, policy, theta, rng = _problem(3, 4, 3, 0.9)
    v = rng.standard_normal(policy.n_params)
    F = exact_fisher(mdp, policy, theta)
    q = 0.5 * v @ F @ v
    hs = np.array([0.2, 0.1, 0.05, 0.025])
    err = np.array([kl_mean(mdp, policy, theta, theta + h * v) - h * h * q for h in hs])
    ratios = err[:-1] / err[1:]
    # KL - 1/2 h^2 v^T F v = c3 h^3 + O(h^4): halving h divides the error by ~8
    np.testing.assert_allclose(ratios, 8.0, rtol=0.15, atol=0)
    rel = np.abs(err) / (hs ** 2 * q)
    assert np.all(np.diff(rel) < 0) and rel[-1] < 0.05


@given(problems)
def test_kl_functions_agree_and_vanish_at_theta_old(case):
    seed, S, A, gamma = case
    mdp, policy, theta, rng = _problem(seed, S, A, gamma)
    new = theta + 0.3 * rng.standard_normal(theta.size)
    per = kl_per_state(mdp, policy, theta, new)
    pi_o, pi_n = policy.probs_table(theta), policy.probs_table(new)
    per_ref = np.sum(pi_o * (np.log(pi_o) - np.log(pi_n)), axis=1)   # direct definition
    np.testing.assert_allclose(per, per_ref, rtol=1e-12, atol=1e-15)
    d = evaluate(mdp, pi_o).d
    np.testing.assert_allclose(kl_mean(mdp, policy, theta, new), d @ per_ref, rtol=1e-12,
                               atol=1e-15)
    assert kl_max(mdp, policy, theta, new) == np.max(per)
    assert kl_mean(mdp, policy, theta, theta) == 0.0
    # complex step through kl_max selects the active state's derivative
    g = complex_step(lambda t: np.array(kl_max(mdp, policy, theta, t)), new)
    s = int(np.argmax(per))
    np.testing.assert_allclose(g, policy.grad_kl(theta, new, np.array([s]))[0], rtol=1e-10,
                               atol=1e-14)


# --- null space and pseudo-inverse (N1) --------------------------------------------------

@given(problems)
def test_softmax_null_space_gradient_orthogonal_and_minimum_norm(case):
    seed, S, A, gamma = case
    mdp, policy, theta, _ = _problem(seed, S, A, gamma)
    N = tabular_softmax_null_space(S, A)
    F = exact_fisher(mdp, policy, theta)
    g = exact_policy_gradient(mdp, policy, theta)
    scale = np.abs(F).max()
    # F is singular along the S per-state constant directions ...
    np.testing.assert_allclose(F @ N, 0.0, rtol=0, atol=1e-14 * scale)
    # ... the gradient is orthogonal to them (sum_a pi grad log pi = 0 per state); the
    # per-state sum cancels terms of size rho pi |Q| (A = Q - V is computed by a subtraction)
    ev = evaluate(mdp, policy.probs_table(theta))
    cancel = np.max(ev.rho[:, None] * np.abs(ev.Q)) + 1e-300
    np.testing.assert_allclose(N.T @ g, 0.0, rtol=0, atol=1e-13 * cancel)
    res = natural_gradient_result(mdp, policy, theta)
    d_min = evaluate(mdp, policy.probs_table(theta)).d.min()
    if d_min > 1e-8:   # every state visited: the null space is exactly these S directions
        assert res.rank == S * (A - 1)
    # minimum norm: no component along the null space; solves F x = g
    np.testing.assert_allclose(N.T @ res.direction, 0.0, rtol=0,
                               atol=1e-10 * max(np.abs(res.direction).max(), 1e-300))
    np.testing.assert_allclose(F @ res.direction, g, rtol=0,
                               atol=1e-9 * max(np.abs(g).max(), 1e-300))


@given(problems)
def test_tabular_npg_direction_is_advantage_over_one_minus_gamma_up_to_state_constants(case):
    seed, S, A, gamma = case
    mdp, policy, theta, _ = _problem(seed, S, A, gamma)
    pi = policy.probs_table(theta)
    ev = evaluate(mdp, pi)
    if ev.d.min() < 1e-6:      # unvisited states: F^+ is zero there, the closed form is not
        return
    x = natural_gradient(mdp, policy, theta).reshape(S, A)
    diff = x - ev.A / (1.0 - gamma)
    # the difference is a constant per state (the null space) ...
    scale = np.abs(ev.A).max() / (1.0 - gamma) + 1e-300
    np.testing.assert_allclose(diff - diff.mean(axis=1, keepdims=True), 0.0, rtol=0,
                               atol=1e-8 * scale)
    # ... and the minimum-norm representative is the centred closed form (N6)
    np.testing.assert_allclose(x, tabular_npg_direction(mdp, pi), rtol=0, atol=1e-8 * scale)


@given(problems, st.sampled_from([0.01, 0.3, 2.0]))
def test_npg_update_equals_softmax_of_theta_plus_step_natural_gradient(case, step):
    seed, S, A, gamma = case
    mdp, policy, theta, _ = _problem(seed, S, A, gamma)
    pi = policy.probs_table(theta)
    if evaluate(mdp, pi).d.min() < 1e-6:
        return
    via_pinv = policy.probs_table(theta + step * natural_gradient(mdp, policy, theta))
    closed = tabular_npg_update(mdp, pi, step)
    np.testing.assert_allclose(closed, via_pinv, rtol=1e-7, atol=1e-12)


@settings(max_examples=10)
@given(st.integers(0, 2**31 - 1), st.integers(2, 6), st.integers(2, 4),
       st.sampled_from([0.5, 0.9, 0.99]), st.sampled_from([0.1, 1.0, 10.0]))
def test_tabular_npg_rate_of_agarwal_kakade_lee_mahajan(seed, S, A, gamma, step):
    rng = np.random.default_rng(seed)
    mdp = random_mdp(rng, S, A, gamma=gamma)
    mdp = mdp.replace(r=rng.random((S, A)))      # the theorem assumes rewards in [0, 1]
    T = 60
    run = tabular_npg(mdp, np.full((S, A), 1.0 / A), step, T)
    v_star = _optimal_eta(mdp)
    t = np.arange(1, T + 1)
    bound = np.log(A) / (step * t) + 1.0 / ((1.0 - gamma) ** 2 * t)
    gap = v_star - run.etas[1:]
    # Agarwal et al. (2021) Thm 16, with a rounding margin for eta ~ 1/(1-gamma)
    assert np.all(gap <= bound + 1e-9 / (1.0 - gamma)), (gap - bound).max()
    assert np.all(gap >= -1e-9 / (1.0 - gamma))      # nothing beats V*


def test_npg_monotone_and_converges_on_a_fixed_mdp():
    mdp, _, _, rng = _problem(11, 5, 3, 0.9)
    run = tabular_npg(mdp, np.full((5, 3), 1.0 / 3), 1.0, 200)
    # NPG improves monotonically (Agarwal et al. Lemma 17's improvement lemma)
    assert np.all(np.diff(run.etas) >= -1e-12)
    np.testing.assert_allclose(run.etas[-1], _optimal_eta(mdp), rtol=1e-6, atol=0)


# --- invariance to reparametrisation (N1) --------------------------------------------------

def test_natural_step_invariant_to_linear_reparametrisation_vanilla_step_is_not():
    mdp, base, theta, rng = _problem(5, 4, 3, 0.9)
    d = base.n_params
    M = np.eye(d) + 0.5 * rng.standard_normal((d, d))
    rep = LinearReparametrisedPolicy(base, M)
    phi = np.linalg.solve(M, theta)
    np.testing.assert_allclose(rep.probs_table(phi), base.probs_table(theta), rtol=1e-12)
    # the reparametrised policy's hand-written gradient: against complex step of eta(phi)
    g_phi = exact_policy_gradient(mdp, rep, phi)
    np.testing.assert_allclose(g_phi, complex_step(lambda p: eta(mdp, rep, p), phi),
                               rtol=1e-10, atol=1e-12 * np.abs(g_phi).max())
    np.testing.assert_allclose(g_phi, M.T @ exact_policy_gradient(mdp, base, theta),
                               rtol=1e-10, atol=1e-12 * np.abs(g_phi).max())
    np.testing.assert_allclose(exact_fisher(mdp, rep, phi),
                               M.T @ exact_fisher(mdp, base, theta) @ M, rtol=1e-10,
                               atol=1e-12 * np.abs(M).max() ** 2)
    step = 0.5
    nat_theta = base.probs_table(theta + step * natural_gradient(mdp, base, theta))
    nat_phi = rep.probs_table(phi + step * natural_gradient(mdp, rep, phi))
    # the natural step moves the policy identically (null-space parts are per-state
    # constants, which softmax ignores); rcond-limited to ~1e-9
    np.testing.assert_allclose(nat_phi, nat_theta, rtol=1e-8, atol=1e-12)
    van_theta = base.probs_table(theta + step * exact_policy_gradient(mdp, base, theta))
    van_phi = rep.probs_table(phi + step * g_phi)
    assert np.abs(van_phi - van_theta).max() > 1e-3


def test_reparametrised_policy_rejects_singular_m():
    base = TabularSoftmaxPolicy(2, 2)
    with pytest.raises(ValueError, match="invertible"):
        LinearReparametrisedPolicy(base, np.zeros((4, 4)))
    with pytest.raises(ValueError, match="shape"):
        LinearReparametrisedPolicy(base, np.eye(3))


# --- validation ---------------------------------------------------------------------------

def test_validation_names_the_argument():
    mdp, policy, theta, _ = _problem(0, 3, 2, 0.9)
    with pytest.raises(ValueError, match="v must"):
        exact_fisher_vector_product(mdp, policy, theta, np.ones(5))
    with pytest.raises(ValueError, match="theta"):
        exact_fisher(mdp, policy, np.ones(5))
    with pytest.raises(ValueError, match="rcond"):
        natural_gradient(mdp, policy, theta, rcond=-1.0)
    with pytest.raises(ValueError, match="finite"):
        kl_mean(mdp, policy, theta, np.full(6, np.nan))
    with pytest.raises(ValueError, match="step"):
        tabular_npg_update(mdp, policy.probs_table(theta), 0.0)
    with pytest.raises(TypeError, match="mdp"):
        exact_fisher("mdp", policy, theta)
