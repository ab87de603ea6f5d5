"""The linear-quadratic testbed (SCOPE M3): every exact quantity by a second route.

Routes: the value-matrix Lyapunov equation solved by scipy versus the second-moment
Lyapunov equation solved by a Kronecker linear solve; a long forward recursion of the
state moments; the exact mean and variance of the finite-horizon return as a Gaussian
quadratic form; calibrated Monte Carlo; complex-step and central-difference derivatives;
LinearGaussianPolicy's own Fisher averaged over points matching the discounted state
moments; scalar closed forms for the lecture's 1-D example. derivations/lq.md
"""
import numpy as np
import pytest
import scipy.linalg
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from refpg.lq import (LQSystem, discrete_lyapunov, lecture_example_eta,
                      lecture_example_fisher, lecture_example_gradient,
                      lecture_example_natural_gradient, lecture_example_system, lq_eta,
                      lq_finite_horizon_return, lq_fisher, lq_gradient, lq_natural_gradient,
                      lq_return_moments, lq_state_moment, lq_value_matrix,
                      random_lq_system, simulate_lq)
from refpg.policies.gaussian import LinearGaussianPolicy
from refpg.testing import check_gradient, complex_step

# --- random systems -----------------------------------------------------------------------


def make_system(seed, n, m, gamma):
    """``random_lq_system`` (W and Sigma0 possibly rank-deficient) and a random
    ``theta`` with small ``K``; the caller checks stability."""
    rng = np.random.default_rng(seed)
    system = random_lq_system(rng, n, m, gamma=gamma)
    theta = system.pack(0.3 * rng.standard_normal((m, n)), 0.5 * rng.standard_normal(m))
    return system, theta


def is_stable(system, theta):
    K, _ = system.unpack(theta)
    M = system.A + system.B @ K
    return np.sqrt(system.gamma) * np.max(np.abs(np.linalg.eigvals(M))) < 0.98


systems = st.builds(make_system, st.integers(0, 2**32 - 1), st.integers(1, 3),
                    st.integers(1, 2), st.floats(0.0, 0.98))


def rel_close_to_complex_step(analytic, numeric):
    # complex step carries no cancellation (~1e-15 relative); rtol 1e-10 is the brief's bar,
    # atol admits components that are zero up to rounding of the largest ones
    assert_allclose(analytic, numeric, rtol=1e-10, atol=1e-12 * np.max(np.abs(numeric)))


# --- Lyapunov routes ----------------------------------------------------------------------


@given(systems)
def test_two_lyapunov_routes_agree(sys_theta):
    system, theta = sys_theta
    assume(is_stable(system, theta))
    P_k, P_s = (lq_value_matrix(system, theta, method=m) for m in ("kron", "scipy"))
    Y_k, Y_s = (lq_state_moment(system, theta, method=m) for m in ("kron", "scipy"))
    # two backward-stable solvers of a system with sqrt(gamma) rho(M) < 0.98: condition
    # number <~ 1e3, so ~1e-13 relative agreement; 1e-11 leaves margin
    assert_allclose(P_k, P_s, rtol=1e-11, atol=1e-11 * np.max(np.abs(P_s)))
    assert_allclose(Y_k, Y_s, rtol=1e-11, atol=1e-11 * np.max(np.abs(Y_s)))
    # eta by (LQ3) value route + scipy vs (LQ4) moment route + Kronecker solve
    e_value = lq_eta(system, theta, route="value", method="scipy")
    e_moment = lq_eta(system, theta, route="moment", method="kron")
    assert_allclose(e_value, e_moment, rtol=1e-11, atol=0)
    assert isinstance(e_moment, float) or e_moment.dtype == np.float64


def test_discrete_lyapunov_satisfies_its_equation_and_refuses_complex_scipy():
    rng = np.random.default_rng(0)
    F = rng.standard_normal((4, 4))
    F *= 0.95 / np.max(np.abs(np.linalg.eigvals(F)))
    C = rng.standard_normal((4, 4))
    X = discrete_lyapunov(F, C)
    # residual of a backward-stable solve: ~eps * cond * |X|
    assert_allclose(F @ X @ F.T + C, X, rtol=0, atol=1e-12 * np.max(np.abs(X)))
    with pytest.raises(TypeError, match="conjugates"):
        discrete_lyapunov(F + 1e-20j, C, method="scipy")
    with pytest.raises(ValueError, match="spectral radius"):
        discrete_lyapunov(2 * F / 0.95, C)
    with pytest.raises(ValueError, match="method"):
        discrete_lyapunov(F, C, method="bogus")


@given(systems)
def test_eta_equals_long_truncated_sum_of_the_moment_recursion(sys_theta):
    system, theta = sys_theta
    assume(is_stable(system, theta))
    # terms decay like (sqrt(gamma) rho)^(2t) <= 0.98^(2t): 2000 steps leave < 1e-17
    J = lq_finite_horizon_return(system, theta, 2000)
    eta = lq_eta(system, theta)
    # the recursion sums 2000 positive terms: rounding ~ 2000 eps relative
    assert_allclose(J, eta, rtol=1e-12, atol=0)


def test_finite_horizon_return_two_routes_and_one_step_closed_form():
    system, theta = make_system(3, 2, 2, 0.9)
    assert is_stable(system, theta)
    for H in (1, 7, 40):
        mean, _ = lq_return_moments(system, theta, H)
        # quadratic-form trace vs forward recursion: rounding only
        assert_allclose(mean, lq_finite_horizon_return(system, theta, H), rtol=1e-12, atol=0)
    # one step, 1-D, by hand (derivations/lq.md#finite-horizon):
    # G = -[(q + r k^2) x^2 + 2 r k sigma x e + r sigma^2 e^2], x ~ N(0, s0), e ~ N(0, 1), so
    # E G = -[(q + r k^2) s0 + r sigma^2],
    # Var G = 2 (q + r k^2)^2 s0^2 + 4 r^2 k^2 sigma^2 s0 + 2 r^2 sigma^4
    q, r, s0, k, sigma = 2.0, 3.0, 0.7, -0.4, 1.3
    sys1 = LQSystem(A=[[0.5]], B=[[1.0]], Q=[[q]], R=[[r]], W=[[0.3]], Sigma0=[[s0]], gamma=0.9)
    th1 = sys1.pack([[k]], [np.log(sigma)])
    mean, var = lq_return_moments(sys1, th1, 1)
    c = q + r * k * k
    assert_allclose(mean, -(c * s0 + r * sigma ** 2), rtol=1e-14, atol=0)
    assert_allclose(var, 2 * c * c * s0 * s0 + 4 * r * r * k * k * sigma ** 2 * s0
                    + 2 * r * r * sigma ** 4, rtol=1e-13, atol=0)


@pytest.mark.slow
def test_eta_matches_monte_carlo_rollouts_within_z_bound():
    system, theta = make_system(11, 2, 1, 0.9)
    assert is_stable(system, theta)
    N, H = 10_000, 150
    rollouts = simulate_lq(system, theta, N, H, np.random.default_rng(2024))
    G = rollouts.rewards @ system.gamma ** np.arange(H)
    eta = lq_eta(system, theta)
    J_H = lq_finite_horizon_return(system, theta, H)
    mean_H, var_H = lq_return_moments(system, theta, H)
    truncation = abs(eta - J_H)                 # exact, ~1e-5 here
    se = np.sqrt(var_H / N)
    assert truncation < 1e-3 * se               # so the test is about the estimator
    # the variance is the EXACT Var G_H (quadratic form in Gaussian noise, LQ10), not a
    # pilot estimate, so the bound is not itself random. z = 5: a correct sampler fails
    # for ~6e-7 of seeds; the seed is fixed, so the outcome is deterministic
    assert abs(G.mean() - eta) <= 5.0 * se + truncation, (G.mean(), eta, se)
    # sample variance: G = -xi^T Lam xi has cumulants k_r = 2^(r-1) (r-1)! tr(Lam^r), so
    # Var(s^2) ~ (k4 + 2 k2^2)/N <= 14 k2^2 / N; z = 5 again
    assert abs(G.var(ddof=1) / var_H - 1) <= 5.0 * np.sqrt(14 / N)
    assert np.all(np.isfinite(rollouts.states))
    assert rollouts.states.shape == (N, H + 1, 2) and rollouts.actions.shape == (N, H, 1)


def test_simulation_is_seeded_and_follows_the_dynamics():
    system, theta = make_system(5, 2, 2, 0.8)
    a = simulate_lq(system, theta, 3, 5, np.random.default_rng(1))
    b = simulate_lq(system, theta, 3, 5, np.random.default_rng(1))
    assert_allclose(a.states, b.states, rtol=0, atol=0)
    # with W = 0 the next state is exactly A s + B a
    sys0 = LQSystem(system.A, system.B, system.Q, system.R, np.zeros((2, 2)), system.Sigma0, 0.8)
    r = simulate_lq(sys0, theta, 4, 6, np.random.default_rng(3))
    pred = r.states[:, :-1] @ sys0.A.T + r.actions @ sys0.B.T
    assert_allclose(r.states[:, 1:], pred, rtol=1e-15, atol=1e-15)
    cost = np.einsum("nti,ij,ntj->nt", r.states[:, :-1], sys0.Q, r.states[:, :-1]) \
        + np.einsum("nti,ij,ntj->nt", r.actions, sys0.R, r.actions)
    assert_allclose(r.rewards, -cost, rtol=1e-14, atol=1e-14)


# --- gradient, Fisher, natural gradient -------------------------------------------------------


@given(systems)
def test_gradient_matches_complex_step_and_central_differences(sys_theta):
    system, theta = sys_theta
    assume(is_stable(system, theta))
    g = lq_gradient(system, theta)
    rel_close_to_complex_step(g, complex_step(lambda t: lq_eta(system, t), theta))
    # central differences through the OTHER solver (scipy, value route)
    res = check_gradient(lambda t: lq_eta(system, t, route="value", method="scipy"), theta, g,
                         method="central")
    assert res.passed, res.report()


@settings(max_examples=10)
@given(systems)
def test_gradient_is_a_gradient_its_jacobian_is_symmetric(sys_theta):
    system, theta = sys_theta
    assume(is_stable(system, theta))
    hess = complex_step(lambda t: lq_gradient(system, t), theta)
    # a Hessian is symmetric; complex step gives each entry to ~1e-15 relative
    assert_allclose(hess, hess.T, rtol=1e-10, atol=1e-12 * np.max(np.abs(hess)))


def _discounted_second_moment_by_recursion(system, theta, steps=3000):
    K, log_std = system.unpack(theta)
    M = system.A + system.B @ K
    N = system.B @ np.diag(np.exp(2 * log_std)) @ system.B.T + system.W
    # D_t = gamma^t E[s_t s_t^T], which stays bounded when M is unstable but gamma small
    D, total, disc = system.Sigma0.copy(), np.zeros_like(system.Sigma0), 1.0
    for _ in range(steps):
        total += D
        disc *= system.gamma
        D = system.gamma * M @ D @ M.T + disc * N
    return total


@settings(max_examples=15)
@given(systems)
def test_fisher_matches_policy_fisher_under_discounted_state_distribution(sys_theta):
    system, theta = sys_theta
    assume(is_stable(system, theta))
    n, m = system.state_dim, system.action_dim
    # E_{d_pi}[s s^T] = (1 - gamma) sum_t gamma^t E[s_t s_t^T], by direct recursion
    second = (1 - system.gamma) * _discounted_second_moment_by_recursion(system, theta)
    # 2n symmetric points +-sqrt(n) L e_i with weights 1/(2n) have second moment L L^T;
    # F(s) is quadratic in s, so these points give the exact average
    lam, V = np.linalg.eigh(second)
    L = V * np.sqrt(np.clip(lam, 0, None))
    pts = np.sqrt(n) * np.concatenate([L.T, -L.T])
    policy = LinearGaussianPolicy(n, m)
    expected = policy.fisher(theta, pts, weights=np.full(2 * n, 1 / (2 * n)))
    # the 3000-step recursion is converged to rounding (~1e-13 relative)
    assert_allclose(lq_fisher(system, theta), expected, rtol=1e-10,
                    atol=1e-11 * np.max(np.abs(expected)))


@given(systems)
def test_natural_gradient_closed_form_solves_the_fisher_system(sys_theta):
    system, theta = sys_theta
    assume(is_stable(system, theta))
    F, g = lq_fisher(system, theta), lq_gradient(system, theta)
    x = lq_natural_gradient(system, theta)
    # F x = g checked as a residual (F may be ill-conditioned when Sigma0 is rank-deficient
    # and the noise is small); scale is |F| |x| + |g|
    scale = np.max(np.abs(F)) * np.max(np.abs(x)) + np.max(np.abs(g))
    assert_allclose(F @ x, g, rtol=0, atol=1e-11 * scale)


# --- stability and validation ---------------------------------------------------------------


def test_unstable_gain_is_rejected():
    system = lecture_example_system()                 # s' = s + a, gamma = 0.9
    # sqrt(0.9) |1 + k| < 1  <=>  -2.054 < k < 0.054
    for k in (0.06, -2.06, 1.0):
        theta = system.pack([[k]], [0.0])
        for f in (lq_eta, lq_gradient, lq_fisher, lq_value_matrix, lq_state_moment):
            with pytest.raises(ValueError, match="stabilise"):
                f(system, theta)
        with pytest.raises(ValueError, match="stabilise"):
            lecture_example_eta(k, 1.0)
    # just inside the region the return is finite and matches the scalar closed form
    theta = system.pack([[0.05]], [0.0])
    assert np.isfinite(lq_eta(system, theta))
    # the finite-horizon recursion needs no stability
    assert np.isfinite(lq_finite_horizon_return(system, system.pack([[1.0]], [0.0]), 10))


def test_system_validation_names_the_field():
    I2 = np.eye(2)
    good = dict(A=I2, B=np.ones((2, 1)), Q=I2, R=[[1.0]], W=0 * I2, Sigma0=I2, gamma=0.9)
    LQSystem(**good)
    for field, value, pattern in [
            ("Q", [[1.0, 1.0], [0.0, 1.0]], "Q must be symmetric"),
            ("W", -I2, "W must be positive semi-definite"),
            ("gamma", 1.0, "gamma"),
            ("B", np.ones((3, 1)), "B must have shape"),
            ("A", np.ones((2, 3)), "A must be square"),
            ("R", [[np.nan]], "R must be finite"),
            ("Sigma0", np.eye(3), "Sigma0 must have shape")]:
        with pytest.raises(ValueError, match=pattern):
            LQSystem(**{**good, field: value})
    system = LQSystem(**good)
    with pytest.raises(ValueError, match="theta"):
        lq_eta(system, np.zeros(4))
    with pytest.raises(ValueError, match="route"):
        lq_eta(system, np.zeros(3), route="bogus")
    with pytest.raises(TypeError, match="LQSystem"):
        lq_eta(good, np.zeros(3))


def test_random_lq_system_is_seeded_and_has_the_stated_open_loop_radius():
    a = random_lq_system(np.random.default_rng(4), 3, 2, gamma=0.8, open_loop_radius=0.7)
    b = random_lq_system(np.random.default_rng(4), 3, 2, gamma=0.8, open_loop_radius=0.7)
    for field in ("A", "B", "Q", "R", "W", "Sigma0"):
        assert_allclose(getattr(a, field), getattr(b, field), rtol=0, atol=0)
    # rescaled to the radius: eigenvalues recomputed, rounding only
    assert_allclose(np.max(np.abs(np.linalg.eigvals(a.A))), 0.7, rtol=1e-12, atol=0)
    assert (a.state_dim, a.action_dim, a.n_params) == (3, 2, 8)
    with pytest.raises(TypeError, match="rng"):
        random_lq_system(4, 3, 2)


def test_theta_layout_matches_linear_gaussian_policy():
    system, theta = make_system(2, 3, 2, 0.5)
    K, log_std = system.unpack(theta)
    policy = LinearGaussianPolicy(3, 2)
    assert policy.n_params == system.n_params
    assert_allclose(policy.pack(K, log_std), theta, rtol=0, atol=0)
    Kp, _, lp = policy.unpack(theta)
    assert_allclose(Kp, K, rtol=0, atol=0)
    assert_allclose(lp, log_std, rtol=0, atol=0)


# --- the lecture's one-dimensional example --------------------------------------------------

K_GRID = np.array([-1.8, -1.0, -0.59, -0.3, 0.0])
S_GRID = np.array([1.0, 0.5, 0.2, 0.05])


# a second 1-D system exercising every scalar (a, b, q, r, w, s0, gamma); stabilising iff
# sqrt(0.8) |1.2 + 0.7 k| < 1, i.e. -3.311 < k < -0.117
OTHER_1D = LQSystem(A=[[1.2]], B=[[0.7]], Q=[[2.0]], R=[[0.5]], W=[[0.3]], Sigma0=[[0.4]],
                    gamma=0.8)


@pytest.mark.parametrize("system, k_grid", [(lecture_example_system(), K_GRID),
                                            (OTHER_1D, np.array([-3.0, -1.7, -0.5]))],
                         ids=["lecture", "other"])
def test_lecture_example_scalar_closed_forms_match_the_matrix_routes(system, k_grid):
    for k in k_grid:
        for s in S_GRID:
            theta = system.pack([[k]], [np.log(s)])
            # scalar formula vs Kronecker moment route: rounding only
            assert_allclose(lecture_example_eta(k, s, system), lq_eta(system, theta),
                            rtol=1e-13, atol=0)
            # (k, sigma) coordinates: d/dsigma = d/dlog_std / sigma; complex step through
            # the matrix route with log_std = log(sigma + i h)
            cs = complex_step(lambda u: lq_eta(system, system.pack([[u[0]]], [np.log(u[1])])),
                              np.array([k, s]))
            rel_close_to_complex_step(lecture_example_gradient(k, s, system), cs)
            # Fisher: F_(k, sigma) = J^T F_(k, log sigma) J with J = diag(1, 1/sigma)
            J = np.diag([1.0, 1.0 / s])
            F = lecture_example_fisher(k, s, system)
            assert_allclose(F, J @ lq_fisher(system, theta) @ J, rtol=1e-13, atol=0)
            nat = np.linalg.solve(F, lecture_example_gradient(k, s, system))
            assert_allclose(lecture_example_natural_gradient(k, s, system), nat,
                            rtol=1e-13, atol=0)


def test_lecture_example_fisher_by_gauss_hermite_in_sigma_coordinates():
    # F_(k, sigma) = E_{s ~ d, a ~ pi}[g g^T] with the scores of N(a; k s, sigma^2) in (k, sigma):
    # d/dk = (a - k s) s / sigma^2,  d/dsigma = -1/sigma + (a - k s)^2 / sigma^3.
    # The score products are polynomials in s of degree <= 2, so s = +-sqrt(m2) is exact.
    system = lecture_example_system()
    x, w = np.polynomial.hermite_e.hermegauss(5)
    w = w / np.sqrt(2 * np.pi)
    for k in K_GRID:
        for sigma in S_GRID:
            m2 = (1 - system.gamma) * lq_state_moment(system, system.pack([[k]], [np.log(sigma)]))
            F = np.zeros((2, 2))
            for s in (np.sqrt(m2[0, 0]), -np.sqrt(m2[0, 0])):
                a = k * s + sigma * x
                g = np.stack([(a - k * s) * s / sigma ** 2,
                              -1 / sigma + (a - k * s) ** 2 / sigma ** 3])
                F += 0.5 * np.einsum("j,ij,kj->ik", w, g, g)
            assert_allclose(lecture_example_fisher(k, sigma), F, rtol=1e-12,
                            atol=1e-12 * np.max(np.abs(F)))


def test_lecture_example_conditioning_claims():
    """derivations/lq.md#the-lectures-one-dimensional-example, claims (C1)-(C3)."""
    g, s0 = 0.9, 1.0
    for k in (-1.5, -1.0, -0.59, -0.3):
        margin = 1 - g * (1 + k) ** 2
        sigmas = np.geomspace(1.0, 1e-3, 40)
        F = lecture_example_fisher(k, sigmas)
        m2 = ((1 - g) * s0 + g * sigmas ** 2) / margin          # E_d[s^2], closed form
        # (C1) scale: sigma^2 F = diag(m2, 2), so every eigenvalue of F is >= c / sigma^2
        lam_min = np.linalg.eigvalsh(F)[:, 0]
        c = min((1 - g) * s0 / margin, 2.0)
        assert np.all(lam_min * sigmas ** 2 >= c * (1 - 1e-12))
        # (C2) shape in (k, sigma): cond F = max(m2/2, 2/m2); it increases as sigma shrinks
        # and saturates at 2 (1 - g (1+k)^2) / ((1 - g) s0)
        cond = np.linalg.cond(F)
        assert_allclose(cond, np.maximum(m2 / 2, 2 / m2), rtol=1e-12, atol=0)
        assert np.all(np.diff(cond) >= 0)
        assert_allclose(cond[-1], 2 * margin / ((1 - g) * s0), rtol=1e-4, atol=0)
        # in the band (1-g) s0 / g << sigma^2, cond ~ 2 margin / (g sigma^2): at sigma = 1,
        # relative deviation (1-g) s0 / (g sigma^2 + (1-g) s0) = 0.1
        assert_allclose(cond[0] * g * sigmas[0] ** 2 / (2 * margin), 1.0, rtol=0.11, atol=0)
        # (C3) refpg's (k, log sigma) coordinates: F = diag(m2 / sigma^2, 2), cond grows like
        # 1/sigma^2 without bound: sigma^2 cond -> (1-g) s0 / (2 margin)
        system = lecture_example_system()
        for s in (1e-2, 1e-3):
            F_log = lq_fisher(system, system.pack([[k]], [np.log(s)]))
            limit = (1 - g) * s0 / (2 * margin)
            # sigma^2 cond = limit + g sigma^2 / (2 margin): relative excess g s^2 / ((1-g) s0)
            assert_allclose(s ** 2 * np.linalg.cond(F_log), limit, rtol=10 * s ** 2, atol=0)
        # direction: natural / vanilla (sigma/k ratio) = m2 / 2 (< 1: natural tilts to k)
        van = lecture_example_gradient(k, sigmas)
        nat = lecture_example_natural_gradient(k, sigmas)
        ratio = (nat[:, 1] / nat[:, 0]) / (van[:, 1] / van[:, 0])
        assert_allclose(ratio, m2 / 2, rtol=1e-12, atol=0)


def test_lecture_example_optimum_is_the_riccati_gain_for_every_sigma():
    # certainty equivalence: d eta / dk = 0 at the discounted LQR gain, whatever sigma.
    # Independent route: scipy's discrete algebraic Riccati equation for (sqrt(g) A, sqrt(g) B)
    g = 0.9
    one = np.ones((1, 1))
    X = scipy.linalg.solve_discrete_are(np.sqrt(g) * one, np.sqrt(g) * one, one, one)
    k_star = -(g * X / (1 + g * X))[0, 0]            # u = -(R + g B'XB)^{-1} g B'XA s
    for sigma in (1.0, 0.3, 0.01):
        dk = lecture_example_gradient(k_star, sigma)[0]
        # dk is a difference of O(10) terms vanishing at k*: rounding ~1e-14
        assert abs(dk) <= 1e-10
    assert_allclose(k_star, -0.58840, atol=5e-6, rtol=0)    # quoted in derivations/lq.md
