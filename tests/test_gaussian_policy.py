"""LinearGaussianPolicy (SCOPE P3): every hand-written map against an independent route.

Routes used: complex-step and central-difference derivatives (refpg.testing), scipy's
multivariate normal (log-density, entropy), tensor Gauss-Hermite quadrature over actions
(exact for polynomials of degree <= 2k-1 in the standardised action, so exact for the
score's mean, its outer product, the KL integrand and the entropy integrand), and
calibrated Monte Carlo for sampling. derivations/gaussian_policy.md
"""
import itertools

import numpy as np
import pytest
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose

from refpg.policies.gaussian import LinearGaussianPolicy
from refpg.testing import check_gradient, complex_step

# --- strategies and helpers ------------------------------------------------------------


@st.composite
def cases(draw, max_batch=4):
    """A policy (n, m <= 3, with or without bias), two parameter vectors, observations,
    actions and non-negative weights; log standard deviations in [-1.5, 1]."""
    n = draw(st.integers(1, 3))
    m = draw(st.integers(1, 3))
    bias = draw(st.booleans())
    policy = LinearGaussianPolicy(n, m, bias=bias)
    d = policy.n_params
    mean_part = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False)
    log_std_part = st.floats(-1.5, 1.0, allow_nan=False, allow_infinity=False)

    def theta():
        head = draw(arrays(np.float64, d - m, elements=mean_part))
        tail = draw(arrays(np.float64, m, elements=log_std_part))
        return np.concatenate([head, tail])

    batch = draw(st.integers(1, max_batch))
    coord = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False)
    obs = draw(arrays(np.float64, (batch, n), elements=coord))
    actions = draw(arrays(np.float64, (batch, m), elements=coord))
    weights = draw(arrays(np.float64, batch, elements=st.floats(0.0, 1.0)))
    return policy, theta(), theta(), obs, actions, weights


def gauss_hermite(m, k=5):
    """Nodes ``z: (k^m, m)`` and weights ``(k^m,)`` with ``sum_j w_j f(z_j) = E f(xi)``,
    ``xi ~ N(0, I_m)``, exactly for polynomials of degree <= 2k - 1 in each coordinate."""
    x, w = np.polynomial.hermite_e.hermegauss(k)
    w = w / np.sqrt(2.0 * np.pi)
    nodes = np.array(list(itertools.product(x, repeat=m)))
    weights = np.prod(np.array(list(itertools.product(w, repeat=m))), axis=1)
    return nodes, weights


def quadrature_actions(policy, theta, obs):
    """Actions ``a_j(s) = mu(s) + sigma * z_j``: ``(B, J, m)`` and the weights ``(J,)``."""
    z, w = gauss_hermite(policy.act_dim)
    mu = policy.mean(theta, obs)                       # (B, m)
    sigma = np.exp(policy.log_std(theta))
    return mu[:, None, :] + sigma * z[None, :, :], w


def rel_close_to_complex_step(analytic, numeric):
    # complex step has no subtractive cancellation: agreement to ~1e-15 relative is
    # expected; rtol 1e-10 is the brief's bar, and atol 1e-12 * max|numeric| admits
    # components that are zero up to the rounding of the largest ones.
    assert_allclose(analytic, numeric, rtol=1e-10, atol=1e-12 * max(1.0, np.max(np.abs(numeric))))


# --- layout, values -------------------------------------------------------------------------


def test_theta_layout_is_row_major_K_then_bias_then_log_std():
    policy = LinearGaussianPolicy(3, 2, bias=True)
    theta = np.arange(1.0, 11.0) / 10   # K = [[.1,.2,.3],[.4,.5,.6]], b = (.7,.8), ls = (.9,1)
    K, b, log_std = policy.unpack(theta)
    assert_allclose(K, [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], rtol=0, atol=0)
    assert_allclose(b, [0.7, 0.8], rtol=0, atol=0)
    assert_allclose(log_std, [0.9, 1.0], rtol=0, atol=0)
    assert_allclose(policy.pack(K, log_std, b), theta, rtol=0, atol=0)
    s = np.array([1.0, -1.0, 2.0])
    # hand computation: K s + b = (.1 - .2 + .6 + .7, .4 - .5 + 1.2 + .8)
    assert_allclose(policy.mean(theta, s), [1.2, 1.9], rtol=1e-15, atol=1e-15)
    assert policy.n_params == 10


def test_log_prob_matches_scipy_multivariate_normal():
    rng = np.random.default_rng(0)
    policy = LinearGaussianPolicy(3, 2, bias=True)
    theta = policy.init_params(rng, scale=1.0)
    obs = rng.standard_normal((5, 3))
    actions = rng.standard_normal((5, 2))
    cov = np.diag(np.exp(2 * policy.log_std(theta)))
    expected = [scipy.stats.multivariate_normal(policy.mean(theta, s), cov).logpdf(a)
                for s, a in zip(obs, actions)]
    out = policy.log_prob(theta, obs, actions)
    assert out.dtype == np.float64
    # two float64 evaluations of the same quadratic form: rounding only
    assert_allclose(out, expected, rtol=1e-13, atol=1e-13)


def test_entropy_matches_scipy_and_quadrature():
    rng = np.random.default_rng(1)
    policy = LinearGaussianPolicy(2, 3)
    theta = policy.init_params(rng, scale=1.0)
    obs = rng.standard_normal((4, 2))
    H = policy.entropy(theta, obs)
    assert H.shape == (4,)
    cov = np.diag(np.exp(2 * policy.log_std(theta)))
    closed = scipy.stats.multivariate_normal(np.zeros(3), cov).entropy()
    # closed forms evaluated two ways: rounding only
    assert_allclose(H, np.full(4, closed), rtol=1e-13, atol=1e-13)
    a, w = quadrature_actions(policy, theta, obs)
    reps = np.repeat(obs[:, None], len(w), 1)
    minus_e_log = -np.einsum("j,bj->b", w, policy.log_prob(theta, reps, a))
    # quadrature exact for the quadratic integrand; error is rounding of ~125 terms
    assert_allclose(H, minus_e_log, rtol=1e-12, atol=1e-12)


def test_wrong_theta_length_raises_naming_theta():
    policy = LinearGaussianPolicy(3, 2)
    obs = np.zeros((1, 3))
    with pytest.raises(ValueError, match="theta"):
        policy.log_prob(np.zeros(7), obs, np.zeros((1, 2)))
    with pytest.raises(ValueError, match="theta_new"):
        policy.kl(np.zeros(8), np.zeros(9), obs)
    with pytest.raises(ValueError, match="theta"):
        policy.grad_log_prob(np.zeros((2, 4)), obs, np.zeros((1, 2)))


def test_bad_inputs_raise_named_errors():
    policy = LinearGaussianPolicy(3, 2, bias=True)
    theta = np.zeros(policy.n_params)
    with pytest.raises(ValueError, match="obs"):
        policy.mean(theta, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="actions"):
        policy.log_prob(theta, np.zeros((4, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="finite"):
        policy.log_prob(np.full(policy.n_params, np.nan), np.zeros((1, 3)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="weights"):
        policy.fisher(theta, np.zeros((4, 3)), weights=np.ones(3))
    with pytest.raises(ValueError, match="weights"):
        policy.fisher(theta, np.zeros((2, 3)), weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="b is required"):
        policy.pack(np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(TypeError, match="bias"):
        LinearGaussianPolicy(3, 2, bias=1)
    with pytest.raises(TypeError, match="rng"):
        policy.sample(theta, np.zeros((1, 3)), rng=0)


# --- gradients ----------------------------------------------------------------------


@given(cases())
def test_score_matches_complex_step_and_central_differences(case):
    policy, theta, _, obs, actions, _ = case
    analytic = policy.grad_log_prob(theta, obs, actions)
    numeric = complex_step(lambda t: policy.log_prob(t, obs, actions), theta)
    rel_close_to_complex_step(analytic, numeric)
    res = check_gradient(lambda t: policy.log_prob(t, obs, actions), theta, analytic,
                         method="central")
    assert res.passed, res.report()


@given(cases())
def test_grad_kl_matches_complex_step_and_central_differences(case):
    policy, theta_old, theta_new, obs, _, _ = case
    analytic = policy.grad_kl(theta_old, theta_new, obs)
    numeric = complex_step(lambda t: policy.kl(theta_old, t, obs), theta_new)
    rel_close_to_complex_step(analytic, numeric)
    # atol: near theta_new = theta_old the KL is ~0 but is computed from terms of size
    # ~|delta log_std| ~ 1 that cancel, so its rounding is ~eps, not eps |KL| as the
    # step's error model assumes; eps / h ~ 1e-10 is the resulting derivative floor
    res = check_gradient(lambda t: policy.kl(theta_old, t, obs), theta_new, analytic,
                         method="central", atol=1e-10 * max(1.0, np.max(np.abs(numeric))))
    assert res.passed, res.report()


@given(cases())
def test_kl_is_zero_at_equal_parameters_and_non_negative(case):
    policy, theta_old, theta_new, obs, _, _ = case
    assert np.all(policy.kl(theta_old, theta_old, obs) == 0.0)       # exact: expm1(0) = 0
    assert np.all(policy.grad_kl(theta_old, theta_old, obs) == 0.0)  # stationary at the minimum
    kl = policy.kl(theta_old, theta_new, obs)
    # KL >= 0 exactly in real arithmetic; in float64 the terms 0.5 expm1(2 delta) - delta of
    # size |delta| may cancel to a rounding error of a few eps |delta| below zero
    _, _, ls_old = policy.unpack(theta_old)
    _, _, ls_new = policy.unpack(theta_new)
    slack = 8 * np.finfo(float).eps * np.sum(np.abs(ls_old - ls_new))
    assert np.all(kl >= -slack)


@given(cases())
def test_kl_equals_expected_log_ratio_by_quadrature(case):
    policy, theta_old, theta_new, obs, _, _ = case
    a, w = quadrature_actions(policy, theta_old, obs)
    reps = np.repeat(obs[:, None, :], len(w), axis=1)
    log_ratio = policy.log_prob(theta_old, reps, a) - policy.log_prob(theta_new, reps, a)
    expected = log_ratio @ w
    kl = policy.kl(theta_old, theta_new, obs)
    # quadrature is exact (quadratic integrand); the sum cancels terms of size up to
    # ~max|log pi| ~ 1e2, so the absolute rounding is ~1e-13
    assert_allclose(kl, expected, rtol=1e-10, atol=1e-11 * max(1.0, np.max(np.abs(log_ratio))))


@given(cases())
def test_score_has_mean_zero_under_the_policy(case):
    policy, theta, _, obs, _, _ = case
    a, w = quadrature_actions(policy, theta, obs)
    reps = np.repeat(obs[:, None, :], len(w), axis=1)
    scores = policy.grad_log_prob(theta, reps, a)            # (B, J, d)
    mean = np.einsum("j,bjd->bd", w, scores)
    # exact quadrature; terms of size up to max|score|, cancelling to 0
    assert_allclose(mean, 0.0, rtol=0, atol=1e-12 * max(1.0, np.max(np.abs(scores))))


# --- Fisher ---------------------------------------------------------------------------------


@given(cases())
def test_fisher_is_expected_score_outer_product_by_quadrature(case):
    policy, theta, _, obs, _, weights = case
    a, w = quadrature_actions(policy, theta, obs)
    reps = np.repeat(obs[:, None, :], len(w), axis=1)
    scores = policy.grad_log_prob(theta, reps, a)            # (B, J, d)
    expected = np.einsum("b,j,bjd,bje->de", weights, w, scores, scores)
    F = policy.fisher(theta, obs, weights=weights)
    # degree-4 integrand, 5-point Gauss-Hermite is exact; rounding of sums of squares
    assert_allclose(F, expected, rtol=1e-11, atol=1e-11 * max(1.0, np.max(np.abs(expected))))


@given(cases())
def test_fisher_is_hessian_of_mean_kl_at_theta_old(case):
    policy, theta, _, obs, _, weights = case
    # Hessian of KL_w(theta_new) = sum_i w_i KL_i at theta_new = theta_old: the complex-step
    # Jacobian of the (separately verified) analytic gradient of the KL
    hess = complex_step(lambda t: weights @ policy.grad_kl(theta, t, obs), theta)
    F = policy.fisher(theta, obs, weights=weights)
    assert_allclose(F, hess, rtol=1e-10, atol=1e-12 * max(1.0, np.max(np.abs(hess))))


def test_fisher_default_weights_are_the_plain_mean():
    rng = np.random.default_rng(2)
    policy = LinearGaussianPolicy(2, 2, bias=True)
    theta = policy.init_params(rng, scale=1.0)
    obs = rng.standard_normal((3, 2, 2))                     # batch shape (3, 2)
    per_state = [policy.fisher(theta, s[None], weights=[1.0]) for s in obs.reshape(-1, 2)]
    # same sums in a different order
    assert_allclose(policy.fisher(theta, obs), np.mean(per_state, axis=0), rtol=1e-13, atol=1e-15)


@given(cases(), st.integers(0, 2**32 - 1))
def test_fisher_vector_product_equals_fisher_times_v(case, seed):
    policy, theta, _, obs, _, weights = case
    v = np.random.default_rng(seed).standard_normal(policy.n_params)
    F = policy.fisher(theta, obs, weights=weights)
    fvp = policy.fisher_vector_product(theta, v, obs, weights=weights)
    # two orders of the same sums of products
    scale = max(1.0, np.max(np.abs(F)) * np.sum(np.abs(v)))
    assert_allclose(fvp, F @ v, rtol=1e-12, atol=1e-12 * scale)


def test_fisher_blocks_closed_form():
    # F(s) = [[Sigma^{-1} kron x x^T, 0], [0, 2 I]] written out for n = 1, m = 2, bias
    policy = LinearGaussianPolicy(1, 2, bias=True)
    theta = policy.pack(K=[[0.3], [-0.2]], log_std=[np.log(2.0), 0.0], b=[1.0, 1.0])
    s = 3.0
    F = policy.fisher(theta, [[s]])
    # theta order: K00, K10, b0, b1, ls0, ls1;  1/sigma^2 = (1/4, 1)
    expected = np.array([
        [s * s / 4, 0, s / 4, 0, 0, 0],
        [0, s * s, 0, s, 0, 0],
        [s / 4, 0, 1 / 4, 0, 0, 0],
        [0, s, 0, 1, 0, 0],
        [0, 0, 0, 0, 2, 0],
        [0, 0, 0, 0, 0, 2]])
    assert_allclose(F, expected, rtol=1e-15, atol=1e-15)  # exact binary fractions


# --- sampling ---------------------------------------------------------------------------


def test_sampling_mean_and_covariance_within_z_bounds():
    rng = np.random.default_rng(12345)
    policy = LinearGaussianPolicy(2, 3, bias=True)
    theta = policy.pack(K=[[1.0, -0.5], [0.2, 0.3], [0.0, 2.0]], log_std=[-1.0, 0.0, 0.7],
                        b=[0.1, -0.2, 0.3])
    s = np.array([0.5, -1.5])
    N = 200_000
    a = policy.sample(theta, np.broadcast_to(s, (N, 2)), rng)
    assert a.shape == (N, 3) and a.dtype == np.float64
    mu, sigma = policy.mean(theta, s), np.exp(policy.log_std(theta))
    # z = 5: a two-sided normal false-alarm rate of 5.7e-7 per coordinate; the seed is
    # fixed, so the outcome is deterministic and a correct sampler never flakes
    z = 5.0
    assert np.all(np.abs(a.mean(0) - mu) <= z * sigma / np.sqrt(N))
    cov = np.cov(a, rowvar=False)
    # Var(sample variance) = 2 sigma^4 / (N-1); Var(sample covariance, independent
    # coordinates) = sigma_i^2 sigma_j^2 / (N - 1) (Gaussian moment identities)
    se = np.outer(sigma, sigma) / np.sqrt(N - 1)
    se[np.diag_indices(3)] = sigma ** 2 * np.sqrt(2.0 / (N - 1))
    assert np.all(np.abs(cov - np.diag(sigma ** 2)) <= z * se)


def test_sampling_is_per_state_and_seeded():
    policy = LinearGaussianPolicy(1, 1)
    theta = policy.pack([[2.0]], [np.log(0.5)])
    obs = np.linspace(-3, 3, 50_000)[:, None]
    a = policy.sample(theta, obs, np.random.default_rng(7))
    a2 = policy.sample(theta, obs, np.random.default_rng(7))
    assert_allclose(a, a2, rtol=0, atol=0)        # same seed, bit-identical
    resid = (a[:, 0] - 2.0 * obs[:, 0]) / 0.5     # standardised: N(0, 1) if per-state mean is right
    n = resid.size
    # z = 5 bounds on the mean (se 1/sqrt n) and variance (se sqrt(2/(n-1))) of N(0,1) draws
    assert abs(resid.mean()) <= 5 / np.sqrt(n)
    assert abs(resid.var(ddof=1) - 1) <= 5 * np.sqrt(2 / (n - 1))
    # and it is not the unconditional spread (a wrong, state-independent mean fails here)
    assert abs(np.corrcoef(a[:, 0], obs[:, 0])[0, 1] - 1) < 0.1


@pytest.mark.parametrize("shift", [1e-8, 1e-12])
def test_kl_and_its_gradient_keep_relative_accuracy_for_nearby_parameters(shift):
    # KL(N(mu0, s^2) || N(mu1, s^2)) = (mu0 - mu1)^2 / (2 s^2): with mu = k s and k1 = k0 +
    # shift, mu0 - mu1 = -shift s. Formed as mu_new - mu_old it cancels (relative error
    # ~eps |mu| / |mu0 - mu1|: 1.9e-5 at shift 1e-12 in the session-4 audit); from the
    # parameter difference (exact here: Sterbenz) it keeps ~1e-15. Reference: 40-digit
    # decimal arithmetic on the same float64 inputs.
    from decimal import Decimal, localcontext

    pol = LinearGaussianPolicy(1, 1, bias=False)
    s = np.array([[3.0]])
    th0 = np.array([0.1, 0.0])
    th1 = np.array([0.1 + shift, 0.0])
    with localcontext() as ctx:
        ctx.prec = 40
        dk = Decimal(float(th1[0])) - Decimal(float(th0[0]))
        kl = float((dk * 3) ** 2 / 2)
        g = float(dk * 9)                  # d KL / d k1 = (mu1 - mu0) s / sigma^2
    assert_allclose(pol.kl(th0, th1, s), [kl], rtol=1e-13)
    assert_allclose(pol.grad_kl(th0, th1, s)[0, 0], g, rtol=1e-13)
