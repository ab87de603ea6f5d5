"""Conjugate gradient (refpg.cg, derivations/cg.md).

Independent routes: a dense solve ``np.linalg.solve(F + lam I, g)``, scipy's
``scipy.sparse.linalg.cg``, the pseudo-inverse natural gradient of refpg.natural
(eigendecomposition), and the finite-termination theorem (at most as many
iterations as distinct eigenvalues).
"""
import numpy as np
import pytest
import scipy.sparse.linalg as spla
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from refpg import TabularSoftmaxPolicy, random_mdp
from refpg.cg import conjugate_gradient
from refpg.natural import exact_fisher, natural_gradient, tabular_softmax_null_space
from refpg.policy_gradient import exact_policy_gradient


def _spd(rng, d, cond):
    """Random symmetric positive definite matrix with condition number ``cond``."""
    U, _ = np.linalg.qr(rng.standard_normal((d, d)))
    eig = np.geomspace(1.0, 1.0 / cond, d)
    return (U * eig) @ U.T


@settings(max_examples=25)
@given(seed=st.integers(0, 2 ** 32 - 1), d=st.integers(1, 12),
       log_cond=st.floats(0.0, 6.0), damping=st.sampled_from([0.0, 1e-3, 0.1]))
def test_matches_direct_solve_within_its_stated_residual(seed, d, log_cond, damping):
    rng = np.random.default_rng(seed)
    F = _spd(rng, d, 10.0 ** log_cond)
    g = rng.standard_normal(d)
    res = conjugate_gradient(lambda v: F @ v, g, damping=damping)
    M = F + damping * np.eye(d)
    x_star = np.linalg.solve(M, g)
    assert res.converged, res.stop_reason
    assert res.residual_norm <= res.tolerance
    # the stated residual bounds the error: ||x - x*|| <= ||r|| / lambda_min(M);
    # the dense solve itself carries cond(M) * eps relative error, added as slack
    lam_min = np.linalg.eigvalsh(M)[0]
    slack = 10 * np.linalg.cond(M) * np.finfo(float).eps * np.linalg.norm(x_star)
    assert np.linalg.norm(res.x - x_star) <= res.residual_norm / lam_min + slack
    # the reported residual is the TRUE residual of the returned x (up to the rounding
    # of one matrix-vector product, ~ eps (||g|| + ||M|| ||x||))
    rounding = 8 * np.finfo(float).eps * (np.linalg.norm(g) + np.linalg.norm(M, 2)
                                          * np.linalg.norm(res.x))
    assert_allclose(res.residual_norm, np.linalg.norm(g - M @ res.x), rtol=0, atol=rounding)
    assert res.residual_history.shape == (res.n_iter + 1,)
    assert res.x.dtype == np.float64


def test_agrees_with_scipy_cg():
    rng = np.random.default_rng(7)
    d = 9
    F = _spd(rng, d, 1e3)
    g = rng.standard_normal(d)
    lam = 0.01
    ours = conjugate_gradient(lambda v: F @ v, g, damping=lam, rtol=1e-12)
    op = spla.LinearOperator((d, d), matvec=lambda v: F @ v + lam * v, dtype=float)
    theirs, info = spla.cg(op, g, rtol=1e-12, atol=0.0, maxiter=10 * d)
    assert info == 0
    # both solve to relative residual 1e-12 on a system of condition ~1e3
    assert_allclose(ours.x, theirs, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_terminates_in_at_most_d_iterations_on_small_spd_systems(seed):
    rng = np.random.default_rng(seed)
    d = 6
    F = _spd(rng, d, 10.0)                       # well conditioned: rounding negligible
    g = rng.standard_normal(d)
    res = conjugate_gradient(lambda v: F @ v, g, rtol=1e-10)
    assert res.converged and res.n_iter <= d


def test_terminates_in_as_many_iterations_as_distinct_eigenvalues():
    rng = np.random.default_rng(3)
    d = 10
    U, _ = np.linalg.qr(rng.standard_normal((d, d)))
    eig = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 5.0, 5.0, 5.0])   # 3 distinct
    F = (U * eig) @ U.T
    res = conjugate_gradient(lambda v: F @ v, rng.standard_normal(d), rtol=1e-10)
    assert res.converged and res.n_iter == 3


def test_on_a_singular_softmax_fisher_it_returns_the_minimum_norm_natural_gradient():
    rng = np.random.default_rng(11)
    mdp = random_mdp(rng, 4, 3, gamma=0.9)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta = policy.init_params(rng, 1.0)
    F = exact_fisher(mdp, policy, theta)
    g = exact_policy_gradient(mdp, policy, theta)
    res = conjugate_gradient(lambda v: F @ v, g, damping=0.0, rtol=1e-12)
    # x0 = 0 and g in range(F): every CG iterate stays in range(F), so the limit is F^+ g,
    # computed by refpg.natural with an eigendecomposition (a different route)
    assert res.converged
    assert_allclose(res.x, natural_gradient(mdp, policy, theta), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("seed", [0, 2, 3])
def test_rounding_floor_keeps_the_null_space_component_bounded(seed):
    # near-deterministic tabular softmax (logits ~ 8 N(0, 1)): cond(F on its range) ~ 1e11,
    # the relative tolerance 1e-15 is below the rounding level. The right-hand side carries
    # a null-space component of 1e-14 |g|, the rounding noise of any gradient computed in
    # float64 by other means (the exact gradient itself has ~1e-17 since its advantages are
    # centred pairwise: evaluation.md#policy-evaluation). Without (CG4) these seeds stop
    # by max_iter or breakdown with a null-space part of x of 5.6e3, 1.4 and 5.0e3 |F^+ g|
    # (measured with the floor set to 0); with it, 0.39, 5e-6 and 0.19.
    rng = np.random.default_rng(seed)
    mdp = random_mdp(rng, 5, 3, gamma=0.9)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta = policy.init_params(rng, 8.0)
    F = exact_fisher(mdp, policy, theta)
    N = tabular_softmax_null_space(mdp.n_states, mdp.n_actions)
    g = exact_policy_gradient(mdp, policy, theta)
    g = g + 1e-14 * np.linalg.norm(g) * (N @ np.random.default_rng(9).standard_normal(N.shape[1]))
    res = conjugate_gradient(lambda v: F @ v, g, rtol=1e-15)
    assert "rounding floor" in res.stop_reason and res.n_iter < 10 * g.size
    ng = natural_gradient(mdp, policy, theta)
    assert np.linalg.norm(N.T @ res.x) <= 1.0 * np.linalg.norm(ng)
    # the part that moves the policy agrees with the pseudo-inverse (eigendecomposition)
    range_part = res.x - N @ (N.T @ res.x)
    assert_allclose(range_part, ng, rtol=0, atol=1e-4 * np.linalg.norm(ng))


def test_start_vector_and_iteration_cap_and_breakdown_are_reported():
    rng = np.random.default_rng(5)
    F = _spd(rng, 5, 100.0)
    g = rng.standard_normal(5)
    x_star = np.linalg.solve(F, g)
    res = conjugate_gradient(lambda v: F @ v, g, x0=x_star)
    assert res.n_iter == 0 and res.converged
    assert_allclose(res.residual_history[0], np.linalg.norm(g - F @ x_star), rtol=1e-12,
                    atol=1e-15)
    capped = conjugate_gradient(lambda v: F @ v, g, max_iter=2, rtol=1e-14)
    assert capped.n_iter == 2 and not capped.converged and "max_iter" in capped.stop_reason
    # g in the null space of a singular F and no damping: p.Fp = 0, reported, no division
    Fs = np.diag([1.0, 0.0])
    bad = conjugate_gradient(lambda v: Fs @ v, np.array([0.0, 1.0]))
    assert not bad.converged and "breakdown" in bad.stop_reason
    assert np.all(np.isfinite(bad.x))
    # zero right-hand side: x = 0 immediately
    zero = conjugate_gradient(lambda v: F @ v, np.zeros(5))
    assert zero.converged and zero.n_iter == 0 and not np.any(zero.x)


def test_invalid_inputs_raise():
    with pytest.raises(ValueError, match="non-finite"):
        conjugate_gradient(lambda v: v * np.nan, np.ones(3))
    with pytest.raises(ValueError, match="shape"):
        conjugate_gradient(lambda v: np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match="damping"):
        conjugate_gradient(lambda v: v, np.ones(3), damping=-1.0)
    with pytest.raises(ValueError, match="finite"):
        conjugate_gradient(lambda v: v, np.array([1.0, np.nan]))


@pytest.mark.parametrize("scale", [1e155, 1e-170, 2.0 ** 40])
def test_the_solution_scales_with_g_over_the_whole_float_range(scale):
    # CG is linear in (g, x). Found by the session-4 audit: with |g|^2 overflowing (1e155)
    # or underflowing (1e-170) the iteration returned x = 0 marked converged. Reference: the
    # dense solve of the unscaled system, times the scale; a power-of-two scale must give
    # bit-identical iterates (CG runs on g / s with s a power of two).
    rng = np.random.default_rng(3)
    F = _spd(rng, 6, 100.0)
    g = rng.standard_normal(6)
    base = conjugate_gradient(lambda v: F @ v, g, rtol=1e-12)
    res = conjugate_gradient(lambda v: F @ v, scale * g, rtol=1e-12)
    assert res.converged and res.n_iter == base.n_iter
    assert_allclose(res.x, scale * np.linalg.solve(F, g), rtol=1e-9)
    # scale * g is rounded (for a non-power-of-two scale) and CG amplifies that by up to the
    # condition number 100 over a few iterations: 1e-11 relative
    assert_allclose(res.x, scale * base.x, rtol=1e-11, atol=0)
    if scale == 2.0 ** 40:
        np.testing.assert_array_equal(res.x, scale * base.x)
