"""Softmax policies (SCOPE P1, P2, P4): one harness run over every softmax policy.

Independent routes:
* logits against a forward pass written out here from the documented parameter
  layout (never the policy's own reshape / unflatten);
* log-probabilities and entropies against 60-digit ``decimal`` arithmetic;
* every hand-written derivative (score, KL gradient, logit Jacobian) against
  the complex-step derivative (relative error <= 1e-10) and central differences
  (within the error their step predicts, refpg.testing.check_gradient);
* the Fisher matrix against the Hessian of KL_mean at theta_old (complex step
  of the analytic KL gradient, and separately second central differences of
  KL itself) and against the mean outer product of scores enumerated over
  actions; the Fisher-vector product against F v and a directional complex step;
* sampling against the probabilities by a chi-square test.
Parameters come from refpg.strategies.thetas with scales up to 1e3.
"""
import math
from decimal import Decimal, localcontext

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats

from refpg.policies import (LinearSoftmaxPolicy, MLPSoftmaxPolicy, SoftmaxPolicy,
                            TabularSoftmaxPolicy)
from refpg.strategies import thetas
from refpg.testing import check_gradient, complex_step

S, A = 3, 4               # non-square on purpose: S != A != d
STATES = np.array([0, 2, 1, 2, 0])
N = STATES.size


def _rng(seed):
    return np.random.default_rng(seed)


def _make(name):
    """(policy, obs) for one harness entry; fixed seeds, visible in the name."""
    if name == "tabular":
        return TabularSoftmaxPolicy(S, A), STATES
    if name == "linear-table":
        return LinearSoftmaxPolicy(_rng(1).uniform(-1, 1, size=(S, A, 5))), STATES
    if name == "linear-obs":
        return LinearSoftmaxPolicy.for_observations(3, A), _rng(2).normal(size=(N, 3))
    if name == "linear-obs-nobias":
        return (LinearSoftmaxPolicy.for_observations(2, 3, bias=False),
                _rng(3).normal(size=(N, 2)))
    if name == "mlp-table":
        return MLPSoftmaxPolicy(2, A, (5,), features=_rng(4).normal(size=(S, 2))), STATES
    if name == "mlp-obs":  # CartPole-sized: obs_dim 4, two actions, two hidden layers
        return MLPSoftmaxPolicy(4, 2, (6, 5)), _rng(5).normal(size=(N, 4))
    raise KeyError(name)


NAMES = ["tabular", "linear-table", "linear-obs", "linear-obs-nobias", "mlp-table", "mlp-obs"]
#: includes near-deterministic (30) and huge (1e3) parameter scales.
SCALES = st.sampled_from([0.3, 3.0, 30.0, 1e3])


def _actions(policy, n=N):
    return np.arange(n) % policy.n_actions


# --- independent references -----------------------------------------------------------

def _forward_reference(policy, theta, obs):
    """Logits written out from the documented layouts, one sample at a time."""
    out = []
    for i in range(len(obs)):
        if isinstance(policy, TabularSoftmaxPolicy):
            s = int(obs[i])
            z = [theta[s * policy.n_actions + a] for a in range(policy.n_actions)]
        elif isinstance(policy, LinearSoftmaxPolicy) and policy.features is not None:
            phi = policy.features[int(obs[i])]
            z = [sum(phi[a, j] * theta[j] for j in range(phi.shape[1]))
                 for a in range(policy.n_actions)]
        elif isinstance(policy, LinearSoftmaxPolicy):
            m, b = policy.obs_dim, int(policy.bias)
            x = obs[i]
            z = [sum(theta[a * (m + b) + j] * x[j] for j in range(m))
                 + (theta[a * (m + 1) + m] if b else 0.0) for a in range(policy.n_actions)]
        else:  # MLP: W_l (n_out, n_in) in C order then b_l, layer by layer
            h = list(policy.features[int(obs[i])] if policy.features is not None else obs[i])
            off = 0
            sizes = policy.sizes
            for l in range(len(sizes) - 1):
                n_in, n_out = sizes[l], sizes[l + 1]
                W = [[theta[off + o * n_in + j] for j in range(n_in)] for o in range(n_out)]
                off += n_in * n_out
                b = [theta[off + o] for o in range(n_out)]
                off += n_out
                u = [sum(W[o][j] * h[j] for j in range(n_in)) + b[o] for o in range(n_out)]
                h = u if l == len(sizes) - 2 else [np.tanh(v) for v in u]
            z = h
        out.append(z)
    return np.array(out, dtype=float)


def _decimal_log_softmax(z):
    """log softmax of one row in 60-digit decimal arithmetic: ``(log p, p)`` as Decimals.

    ``lse = m + ln(1 + s)``, ``s = sum_{b != k} e^{z_b - m}``; ``ln(1 + s)`` by its
    series when ``s < 1e-20`` (60 digits of ``1 + s`` would keep too few digits of ``s``).
    """
    with localcontext() as ctx:
        ctx.prec = 60
        D = [Decimal(float(v)) for v in z]
        k = max(range(len(D)), key=lambda i: D[i])
        m = D[k]
        s = sum(((d - m).exp() for i, d in enumerate(D) if i != k), Decimal(0))
        log1p = s - s * s / 2 + s * s * s / 3 if s < Decimal("1e-20") else (1 + s).ln()
        logp = [d - m - log1p for d in D]
        return logp, [lp.exp() for lp in logp]


def _decimal_kl(zp, zq):
    with localcontext() as ctx:
        ctx.prec = 60
        lp, p = _decimal_log_softmax(zp)
        lq, _ = _decimal_log_softmax(zq)
        return float(sum(pi * (a - b) for pi, a, b in zip(p, lp, lq)))


def _hessian_central(f, x, Q, h):
    """``Q^T (d^2 f) Q`` by second central differences along the columns of ``Q``,
    with the error the step predicts (Richardson: ``|H_h - H_2h| / 3`` plus rounding).
    """
    def second(step):
        r = Q.shape[1]
        H = np.empty((r, r))
        fmax = 0.0
        for i in range(r):
            for j in range(i, r):
                qi, qj = step * Q[:, i], step * Q[:, j]
                vals = [f(x + qi + qj), f(x + qi - qj), f(x - qi + qj), f(x - qi - qj)]
                fmax = max(fmax, max(abs(v) for v in vals))
                H[i, j] = H[j, i] = (vals[0] - vals[1] - vals[2] + vals[3]) / (4 * step * step)
        return H, fmax

    H1, f1 = second(h)
    H2, f2 = second(2 * h)
    eps = np.finfo(float).eps
    err = np.abs(H1 - H2) / 3 + 8 * eps * max(f1, f2, 1e-300) / h**2
    return H1, err


def _directions(d, rng, max_full=20):
    """The identity when ``d`` is small (full Hessian), else 8 random unit directions."""
    if d <= max_full:
        return np.eye(d)
    Q = rng.normal(size=(d, 8))
    return Q / np.linalg.norm(Q, axis=0)


def _atol_floor(grad, policy, theta, obs):
    """Absolute tolerance for a complex-step comparison: ``1e-10 max|grad| + 1e-15 max|J|``.

    The relative part is the claim. The floor matters only where the gradient is
    exactly zero (``theta_new = theta_old`` for the KL gradient): the complex step
    then returns the rounding noise of the imaginary parts of terms of size
    ``|J|`` (the logits' Jacobian), measured up to ~1e-28 at unit scale. It is not
    bit-reproducible: NumPy's SIMD ``exp``/``log`` round differently in the
    vectorised body and the scalar tail of an array, so the noise depends on
    memory alignment. ``1e-15 max|J|`` is above that noise and far below any
    wrong gradient (which is O(|J|) wherever it is not also zero).
    """
    scale = np.max(np.abs(policy.logits_jacobian(theta, obs)))
    return 1e-10 * np.max(np.abs(grad)) + 1e-15 * max(scale, 1.0)


# --- derivatives ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_score_matches_complex_step_and_central_differences(name, data):
    policy, obs = _make(name)
    theta = data.draw(thetas(policy, scale=SCALES))
    a = _actions(policy)
    f = lambda t: policy.log_prob(t, obs, a)  # noqa: E731
    g = lambda t: policy.grad_log_prob(t, obs, a)  # noqa: E731
    res = check_gradient(f, theta, g, method="complex",  # rel <= 1e-10
                         atol=_atol_floor(g(theta), policy, theta, obs))
    assert res.passed, str(res)
    res = check_gradient(f, theta, g, method="central")  # within the predicted step error
    assert res.passed, str(res)


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_logits_jacobian_matches_complex_step(name, data):
    policy, obs = _make(name)
    theta = data.draw(thetas(policy, scale=SCALES))
    res = check_gradient(lambda t: policy.logits(t, obs), theta,
                         lambda t: policy.logits_jacobian(t, obs), method="complex")
    assert res.passed, str(res)


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_kl_gradient_matches_complex_step_and_central_differences(name, data):
    policy, obs = _make(name)
    theta_old = data.draw(thetas(policy, scale=SCALES))
    theta_new = theta_old + data.draw(thetas(policy, scale=st.sampled_from([1e-3, 0.3, 3.0])))
    f = lambda t: policy.kl(theta_old, t, obs)  # noqa: E731
    g = lambda t: policy.grad_kl(theta_old, t, obs)  # noqa: E731
    res = check_gradient(f, theta_new, g, method="complex",
                         atol=_atol_floor(g(theta_new), policy, theta_new, obs))
    assert res.passed, str(res)
    # KL's rounding is not eps * KL: the logits it is computed from carry ~eps |z| each,
    # which moves KL by ~eps sum_a |z_a| |p_new - p_old|_a; over a step h that is a
    # derivative error of ~2 eps sum|z||dp| / h (the rounding model of check_gradient
    # only knows eps |f| / h).
    zo, zn = policy.logits(theta_old, obs), policy.logits(theta_new, obs)
    dp = np.abs(np.exp(policy.log_probs(theta_new, obs)) - np.exp(policy.log_probs(theta_old, obs)))
    h_min = (3 * np.finfo(float).eps) ** (1 / 3)
    floor = 2 * np.finfo(float).eps * np.max(np.sum((np.abs(zo) + np.abs(zn)) * dp, axis=1)) / h_min
    res = check_gradient(f, theta_new, g, method="central",
                         atol=1e-12 * np.max(np.abs(g(theta_new))) + 10 * floor + 1e-300)
    assert res.passed, str(res)


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_kl_matches_decimal_is_zero_at_equal_parameters_and_never_negative(name, data):
    policy, obs = _make(name)
    theta_old = data.draw(thetas(policy, scale=SCALES))
    delta = data.draw(thetas(policy, scale=st.sampled_from([1e-8, 1e-3, 1.0, 30.0])))
    theta_new = theta_old + delta
    np.testing.assert_array_equal(policy.kl(theta_old, theta_old, obs), np.zeros(N))
    kl = policy.kl(theta_old, theta_new, obs)
    assert np.all(kl >= 0), kl
    zo, zn = policy.logits(theta_old, obs), policy.logits(theta_new, obs)
    ref = np.array([_decimal_kl(zo[i], zn[i]) for i in range(N)])
    # (D3b) is relatively accurate: its error is a few eps relative plus the rounding of
    # the logits themselves, eps * |z| * |grad of KL wrt z| <= eps * |z| * 2 * max|dz|
    dz = np.max(np.abs(zn - zo), axis=1)
    atol = 8 * np.finfo(float).eps * (1 + np.max(np.abs(zo), axis=1)) * np.minimum(2 * dz, 1)
    # + 1e-55: the 60-digit reference's own absolute error on O(1) log-probabilities
    assert np.all(np.abs(kl - ref) <= 1e-12 * ref + atol + 1e-55), (kl, ref)


@pytest.mark.parametrize("name", NAMES)
def test_small_kl_is_half_the_fisher_quadratic_form_to_relative_accuracy(name):
    # KL(theta, theta + eps v) = eps^2/2 v^T F v + O(eps^3): with eps = 1e-7 the ratio is
    # 1 + O(1e-7); a naive sum p (log p - log q) has absolute error ~1e-16 >> KL ~ 1e-14.
    policy, obs = _make(name)
    rng = _rng(12)
    theta = rng.normal(size=policy.n_params)
    v = rng.normal(size=policy.n_params)
    eps = 1e-7
    for i in range(N):
        kl = policy.kl(theta, theta + eps * v, obs[i:i + 1])[0]
        quad = 0.5 * eps**2 * v @ policy.fisher(theta, obs[i:i + 1]) @ v
        np.testing.assert_allclose(kl, quad, rtol=1e-5, atol=0)


# --- Fisher matrix and Fisher-vector products --------------------------------------------

def _weights(n, seed=13):
    w = _rng(seed).uniform(0.1, 1.0, size=n)
    return w / w.sum()


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_fisher_is_the_complex_step_hessian_of_mean_kl(name, data):
    policy, obs = _make(name)
    theta = data.draw(thetas(policy, scale=SCALES))
    w = _weights(N)
    F = policy.fisher(theta, obs, weights=w)
    # d/dtheta_new of the analytic grad of KL_mean, at theta_new = theta_old
    H = complex_step(lambda t: w @ policy.grad_kl(theta, t, obs), theta)
    # 1e-290: with logits of magnitude ~1e3 the Fisher entries can sit near the underflow
    # threshold (measured 1e-294..1e-307), where products of probabilities pass through
    # subnormal numbers and no relative accuracy is possible (2^52 x the smallest normal
    # is ~1e-292); everything above is held to the relative claim
    np.testing.assert_allclose(F, H, rtol=1e-10, atol=max(1e-12 * np.max(np.abs(H)), 1e-290))
    np.testing.assert_allclose(F, F.T, rtol=0, atol=max(1e-15 * np.max(np.abs(F)), 1e-290))


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=6)
@given(data=st.data())
def test_fisher_is_the_central_difference_hessian_of_mean_kl(name, data):
    policy, obs = _make(name)
    theta = data.draw(thetas(policy, scale=st.sampled_from([0.3, 3.0])))
    w = _weights(N)
    Q = _directions(policy.n_params, _rng(14))
    kl_mean = lambda t: float(w @ policy.kl(theta, t, obs))  # noqa: E731
    H, err = _hessian_central(kl_mean, theta, Q, h=1e-3)
    FQ = Q.T @ policy.fisher(theta, obs, weights=w) @ Q
    tol = 10 * err + 1e-9 * np.max(np.abs(FQ))  # predicted step error, as in check_gradient
    assert np.all(np.abs(H - FQ) <= tol), np.max(np.abs(H - FQ) / tol)


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_fisher_is_the_mean_outer_product_of_scores_over_actions(name, data):
    policy, obs = _make(name)
    theta = data.draw(thetas(policy, scale=SCALES))
    w = _weights(N)
    p = policy.probs(theta, obs)
    ref = np.zeros((policy.n_params, policy.n_params))
    for a in range(policy.n_actions):
        g = policy.grad_log_prob(theta, obs, np.full(N, a))
        ref += np.einsum("n,n,nd,ne->de", w, p[:, a], g, g)
    F = policy.fisher(theta, obs, weights=w)
    # sums of A non-negative rank-one terms vs the centred Jacobian: rounding ~ eps |J|^2
    np.testing.assert_allclose(F, ref, rtol=1e-10,
                               atol=max(1e-13 * np.max(np.abs(ref)), 1e-290))  # 1e-290: underflow, see above


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_fisher_vector_product_equals_F_v_and_directional_complex_step(name, data):
    policy, obs = _make(name)
    theta = data.draw(thetas(policy, scale=SCALES))
    v = data.draw(thetas(policy, scale=1.0))
    w = _weights(N)
    Fv = policy.fisher_vector_product(theta, v, obs, weights=w)
    F = policy.fisher(theta, obs, weights=w)
    scale = max(np.max(np.abs(F)) * np.sum(np.abs(v)), 1e-277)  # 1e-290 / 1e-13: underflow
    np.testing.assert_allclose(Fv, F @ v, rtol=1e-10, atol=1e-13 * scale)  # two orders of sums
    # F v = d/dh grad KL_mean(theta, theta + h v) at h = 0, by one complex step
    h = 1e-20
    cs = np.imag(w @ policy.grad_kl(theta, theta + 1j * h * v, obs)) / h
    np.testing.assert_allclose(Fv, cs, rtol=1e-10, atol=1e-13 * scale)
    # default weights are the plain mean over obs
    np.testing.assert_allclose(policy.fisher_vector_product(theta, v, obs),
                               policy.fisher(theta, obs) @ v, rtol=1e-10, atol=1e-13 * scale)


def test_tabular_fisher_null_space_is_the_per_state_constant_shifts():
    # derivations/policies.md#tabular-softmax: F (e_s (x) 1_A) = 0 for each state s, and
    # F is positive definite on the complement when every state has weight > 0.
    policy = TabularSoftmaxPolicy(S, A)
    theta = _rng(15).normal(size=S * A)
    w = _weights(S)
    F = policy.fisher(theta, np.arange(S), weights=w)
    null = np.kron(np.eye(S), np.ones((1, A)))            # (S, S*A): rows span the null space
    np.testing.assert_allclose(F @ null.T, 0.0, rtol=0, atol=1e-15)
    eig = np.linalg.eigvalsh(F)
    assert np.sum(eig < 1e-12) == S and np.min(eig[eig >= 1e-12]) > 1e-3


# --- tables -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["tabular", "linear-table", "mlp-table"])
def test_tables_agree_with_per_state_calls(name):
    policy, _ = _make(name)
    theta = _rng(16).normal(size=policy.n_params)
    states = np.arange(policy.n_states)
    np.testing.assert_array_equal(policy.probs_table(theta), policy.probs(theta, states))
    np.testing.assert_array_equal(policy.log_probs_table(theta), policy.log_probs(theta, states))
    G = policy.grad_log_prob_table(theta)
    for a in range(policy.n_actions):
        np.testing.assert_allclose(G[:, a], policy.grad_log_prob(theta, states, np.full(S, a)),
                                   rtol=1e-13, atol=1e-15)  # J^T(e_a - p) in two orders
    c = _rng(17).normal(size=(policy.n_states, policy.n_actions))
    ref = sum(policy.logits_jacobian(theta, states)[s].T @ c[s] for s in range(S))
    np.testing.assert_allclose(policy.vjp_table(theta, c), ref, rtol=1e-13, atol=1e-15)


def test_score_table_keeps_relative_accuracy_for_near_deterministic_rows():
    # tabular scores are e_a - pi_s; for the likely action the entry 1 - pi_a = e^-40 must
    # not round to 0 (J_a - pi.J would). Reference: 60-digit decimal softmax; each entry
    # to 1e-14 relative (float64 log-softmax and expm1: a few ulps).
    policy = TabularSoftmaxPolicy(2, 3)
    z = np.array([[40.0, 0.0, -3.0], [0.5, -45.0, 44.0]])
    G = policy.grad_log_prob_table(z.ravel())
    for s in range(2):
        _, p = _decimal_log_softmax(z[s])
        with localcontext() as ctx:
            ctx.prec = 60
            want = np.array([[float((1 if b == a else 0) - p[b]) for b in range(3)]
                             for a in range(3)])
        np.testing.assert_allclose(G[s][:, 3 * s:3 * s + 3], want, rtol=1e-14, atol=0)
        np.testing.assert_array_equal(np.delete(G[s], np.s_[3 * s:3 * s + 3], axis=1), 0.0)


@pytest.mark.parametrize("name", NAMES)
def test_batches_of_any_shape_match_flat_batches(name):
    policy, obs = _make(name)
    theta = _rng(18).normal(size=policy.n_params)
    obs6 = np.concatenate([obs, obs[:1]])
    obs23 = obs6.reshape((2, 3) + obs6.shape[1:])
    a6 = np.arange(6) % policy.n_actions
    np.testing.assert_array_equal(policy.log_prob(theta, obs23, a6.reshape(2, 3)).ravel(),
                                  policy.log_prob(theta, obs6, a6))
    np.testing.assert_array_equal(policy.grad_log_prob(theta, obs23, a6.reshape(2, 3)),
                                  policy.grad_log_prob(theta, obs6, a6).reshape(2, 3, -1))
    assert policy.sample(theta, obs23, _rng(0)).shape == (2, 3)
    np.testing.assert_allclose(policy.fisher(theta, obs23), policy.fisher(theta, obs6),
                               rtol=1e-14, atol=1e-16)
    one = obs[0]
    assert policy.log_prob(theta, one, 0).shape == ()
    assert np.shape(policy.sample(theta, one, _rng(0))) == ()
    np.testing.assert_array_equal(policy.grad_log_prob(theta, one, 0),
                                  policy.grad_log_prob(theta, obs[:1], [0])[0])


# --- sampling -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_sample_frequencies_pass_a_chi_square_test(name):
    policy, obs = _make(name)
    theta = 0.3 * _rng(19).normal(size=policy.n_params)
    n = 20000
    for i in (0, 1):
        batch = np.repeat(obs[i:i + 1], n, axis=0)
        p = policy.probs(theta, obs[i:i + 1])[0]
        assert np.all(n * p >= 5), "chi-square approximation needs expected counts >= 5"
        counts = np.bincount(policy.sample(theta, batch, _rng(100 + i)),
                             minlength=policy.n_actions)
        chi2 = np.sum((counts - n * p) ** 2 / (n * p))
        # false-alarm rate 1e-6 per check: a right sampler fails once in a million seeds
        assert chi2 <= stats.chi2.ppf(1 - 1e-6, df=policy.n_actions - 1), (counts, n * p)


def test_sampling_is_reproducible_and_never_draws_a_zero_probability_action():
    policy = TabularSoftmaxPolicy(1, 3)
    theta = np.array([0.0, 0.0, -2000.0])            # p_2 = e^{-2000} underflows to 0
    a1 = policy.sample(theta, np.zeros(10000, dtype=int), _rng(7))
    a2 = policy.sample(theta, np.zeros(10000, dtype=int), _rng(7))
    np.testing.assert_array_equal(a1, a2)
    assert a1.dtype == np.int64 and not np.any(a1 == 2)
    with pytest.raises(TypeError, match="real theta"):
        policy.sample(theta + 0j, [0], _rng(0))


# --- constructions that must agree ------------------------------------------------------------

def test_linear_with_one_hot_features_is_the_tabular_softmax():
    lin, tab = LinearSoftmaxPolicy.one_hot(S, A), TabularSoftmaxPolicy(S, A)
    theta = _rng(20).normal(size=S * A)
    a = np.arange(N) % A
    # phi @ theta with one-hot phi is an exact selection: bit-identical results
    np.testing.assert_array_equal(lin.logits(theta, STATES), tab.logits(theta, STATES))
    np.testing.assert_array_equal(lin.grad_log_prob(theta, STATES, a),
                                  tab.grad_log_prob(theta, STATES, a))
    np.testing.assert_allclose(lin.fisher(theta, STATES), tab.fisher(theta, STATES),
                               rtol=1e-15, atol=1e-17)


def test_mlp_without_hidden_layers_is_the_linear_policy_on_observations():
    m, nA = 3, 4
    mlp, lin = MLPSoftmaxPolicy(m, nA, hidden=()), LinearSoftmaxPolicy.for_observations(m, nA)
    rng = _rng(21)
    W, b = rng.normal(size=(nA, m)), rng.normal(size=nA)
    x = rng.normal(size=(N, m))
    t_mlp = np.concatenate([W.ravel(), b])                  # documented MLP layout
    t_lin = np.concatenate([W, b[:, None]], axis=1).ravel()  # documented [W | b] layout
    np.testing.assert_allclose(mlp.logits(t_mlp, x), lin.logits(t_lin, x), rtol=1e-14, atol=1e-15)
    W2, b2 = lin.weights(t_lin)
    np.testing.assert_array_equal(W2, W)
    np.testing.assert_array_equal(b2, b)


def test_linear_phi_reproduces_the_logits():
    for name in ("linear-table", "linear-obs", "linear-obs-nobias"):
        policy, obs = _make(name)
        theta = _rng(22).normal(size=policy.n_params)
        np.testing.assert_allclose(policy.phi(obs) @ theta, policy.logits(theta, obs),
                                   rtol=1e-14, atol=1e-15)


def test_mlp_init_params_has_the_glorot_scale_and_is_seeded():
    policy = MLPSoftmaxPolicy(40, 30, hidden=(50,))
    t1, t2 = policy.init_params(_rng(23)), policy.init_params(_rng(23))
    np.testing.assert_array_equal(t1, t2)
    for l, (W, b) in enumerate(policy.unflatten(t1)):
        n_out, n_in = W.shape
        var = 2.0 / (n_in + n_out)
        n = W.size
        # sample variance of n Gaussian entries: sd = var sqrt(2/(n-1)); z = 5 -> 6e-7 false alarms
        assert abs(np.var(W) - var) <= 5 * var * math.sqrt(2.0 / (n - 1)), (l, np.var(W), var)
        np.testing.assert_array_equal(b, 0.0)
    np.testing.assert_array_equal(policy.flatten(policy.unflatten(t1)), t1)


# --- validation -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_wrong_theta_and_obs_are_rejected_by_name(name):
    policy, obs = _make(name)
    d = policy.n_params
    theta = np.zeros(d)
    a = _actions(policy)
    with pytest.raises(ValueError, match="theta"):
        policy.log_prob(np.zeros(d + 1), obs, a)
    with pytest.raises(ValueError, match="theta"):
        policy.grad_log_prob(np.full(d, np.nan), obs, a)
    with pytest.raises(ValueError, match="theta_old"):
        policy.kl(np.zeros(d - 1) if d > 1 else np.zeros(2), theta, obs)
    with pytest.raises(ValueError, match="theta_new"):
        policy.grad_kl(theta, np.zeros(d + 2), obs)
    with pytest.raises(ValueError, match="actions"):
        policy.log_prob(theta, obs, np.full(N, policy.n_actions))
    with pytest.raises(ValueError, match="^v must"):
        policy.fisher_vector_product(theta, np.zeros(d + 1), obs)
    with pytest.raises(ValueError, match="weights"):
        policy.fisher(theta, obs, weights=-np.ones(N))
    if policy.n_states is not None:
        with pytest.raises(ValueError, match="obs"):
            policy.log_prob(theta, np.array([0, policy.n_states]), [0, 0])
        with pytest.raises(ValueError, match="obs"):
            policy.log_prob(theta, np.array([-1]), [0])
        with pytest.raises(TypeError, match="obs"):
            policy.log_prob(theta, np.array([0.5]), [0])
    else:
        with pytest.raises(ValueError, match="obs"):
            policy.log_prob(theta, obs[:, :-1] if obs.shape[1] > 1 else obs[:, :0], a)
        bad = obs.copy()
        bad[0, 0] = np.nan
        with pytest.raises(ValueError, match="obs"):
            policy.log_prob(theta, bad, a)
        with pytest.raises(ValueError, match="not tabular-capable"):
            policy.probs_table(theta)


def test_constructor_arguments_are_validated():
    with pytest.raises(ValueError, match="features"):
        LinearSoftmaxPolicy(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="features"):
        LinearSoftmaxPolicy(np.full((2, 2, 2), np.nan))
    with pytest.raises(ValueError, match="obs_dim"):
        LinearSoftmaxPolicy.for_observations(0, 2)
    with pytest.raises(TypeError, match="bias"):
        LinearSoftmaxPolicy.for_observations(2, 2, bias="yes")
    with pytest.raises(ValueError, match="hidden"):
        MLPSoftmaxPolicy(2, 2, hidden=(3, 0))
    with pytest.raises(ValueError, match="features"):
        MLPSoftmaxPolicy(2, 2, features=np.zeros((3, 5)))
    with pytest.raises(ValueError, match="pi"):
        TabularSoftmaxPolicy(1, 2).theta_from_probs([[1.0, 0.0]])
    with pytest.raises(ValueError, match="pi"):
        TabularSoftmaxPolicy(1, 2).theta_from_probs([[np.nan, 0.5]])
    tab = TabularSoftmaxPolicy(2, 3)
    pi = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    np.testing.assert_allclose(tab.probs_table(tab.theta_from_probs(pi)), pi, rtol=1e-15, atol=0)
    assert all(isinstance(p, SoftmaxPolicy) for p in (tab, LinearSoftmaxPolicy.one_hot(1, 1)))
