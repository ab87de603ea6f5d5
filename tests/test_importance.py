"""Importance sampling (refpg.importance, derivations/importance.md).

Independent routes: the exact moments (IS3)-(IS4) are checked against a brute-force
enumeration of every n-tuple of samples (product space K^n); the sampled estimators
against those exact moments with calibrated bounds; log-space weights against direct
ratios; the self-normalised enumeration against the delta-method limit.
"""
import itertools

import numpy as np
import pytest
from numpy.testing import assert_allclose

from refpg.importance import (effective_sample_size, exact_importance_moments,
                              exact_self_normalised_moments, importance_sampling_estimate,
                              log_importance_weights, support_mismatch)

# A 4-outcome example used throughout: target p, behaviour q, function f.
P = np.array([0.1, 0.2, 0.3, 0.4])
Q = np.array([0.4, 0.3, 0.2, 0.1])
F = np.array([1.0, -2.0, 0.5, 3.0])
#: z for a two-sided false-alarm rate of about 6e-7 per comparison (normal tail),
#: so a correct estimator essentially never fails and a biased one does.
Z = 5.0


def _brute_force(f, p, q, n):
    """Mean and variance of mu_IS = mean(w f) over ALL n-tuples drawn from q (K^n terms)."""
    w = np.where(q > 0, p / np.where(q > 0, q, 1.0), 0.0)
    mean = m2 = 0.0
    for tup in itertools.product(np.flatnonzero(q > 0), repeat=n):
        prob = np.prod(q[list(tup)])
        val = np.mean(w[list(tup)] * f[list(tup)])
        mean += prob * val
        m2 += prob * val * val
    return mean, m2 - mean * mean


@pytest.mark.parametrize("n", [1, 2, 3])
def test_is_estimator_is_unbiased_and_its_variance_is_exact(n):
    ex = exact_importance_moments(F, P, Q, n=n)
    mean, var = _brute_force(F, P, Q, n)
    # exact sums over at most 4^3 = 64 tuples: rounding only
    assert_allclose(ex.mean, mean, rtol=1e-13, atol=1e-15)
    assert_allclose(ex.mean, P @ F, rtol=1e-13, atol=1e-15)
    assert_allclose(ex.variance, var, rtol=1e-12, atol=1e-15)
    assert ex.bias == 0.0


def test_missing_support_raises_and_names_the_outcome():
    q = np.array([0.5, 0.5, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"q\(x\) = 0 < p\(x\) at outcome\(s\) \[2, 3\]"):
        exact_importance_moments(F, P, q)
    idx, mass = support_mismatch(P, q, F)
    assert idx.tolist() == [2, 3]
    assert_allclose(mass, 0.7, rtol=1e-15, atol=0)


def test_missing_support_bias_is_minus_the_missing_mass_times_f():
    q = np.array([0.5, 0.5, 0.0, 0.0])
    ex = exact_importance_moments(F, P, q, n=2, allow_missing_support=True)
    # closed form (IS3): the unreachable outcomes 2, 3 are simply lost
    assert_allclose(ex.bias, -(0.3 * 0.5 + 0.4 * 3.0), rtol=1e-14, atol=0)
    mean, var = _brute_force(F, P, q, 2)
    assert_allclose(ex.mean, mean, rtol=1e-13, atol=1e-15)
    assert_allclose(ex.variance, var, rtol=1e-12, atol=1e-15)


def test_missing_support_where_f_is_zero_is_harmless():
    f = np.array([1.0, -2.0, 0.0, 0.0])
    q = np.array([0.5, 0.5, 0.0, 0.0])
    ex = exact_importance_moments(f, P, q)
    assert ex.bias == 0.0 and ex.missing_support.size == 0


def test_sampled_estimate_is_within_its_exact_standard_error_and_biased_without_support():
    rng = np.random.default_rng(20240)
    n = 20000
    x = rng.choice(4, size=n, p=Q)
    est = importance_sampling_estimate(F[x], np.log(P[x]), np.log(Q[x]))
    ex = exact_importance_moments(F, P, Q, n=n)
    assert abs(est.value - ex.target) <= Z * np.sqrt(ex.variance)
    # the sample standard error estimates the exact one (relative error ~ 1/sqrt(n))
    assert_allclose(est.std_error, np.sqrt(ex.variance), rtol=0.05, atol=0)
    # with q = 0 on outcomes 2, 3 the estimate concentrates on the BIASED mean:
    q = np.array([0.5, 0.5, 0.0, 0.0])
    x = rng.choice(4, size=n, p=q)
    est = importance_sampling_estimate(F[x], np.log(P[x]), np.log(q[x]))
    ex = exact_importance_moments(F, P, q, n=n, allow_missing_support=True)
    assert abs(est.value - ex.mean) <= Z * np.sqrt(ex.variance)
    assert abs(est.value - ex.target) > 100 * np.sqrt(ex.variance)   # bias 1.35 >> se


def test_self_normalised_is_biased_at_finite_n_and_matches_the_delta_method_limit():
    ex = exact_importance_moments(F, P, Q)
    means, variances = [], []
    for n in (2, 4, 8, 16, 32):
        m, v = exact_self_normalised_moments(F, P, Q, n)
        means.append(m)
        variances.append(v)
    bias = np.array(means) - P @ F
    assert abs(bias[0]) > 1e-3                    # visibly biased at n = 2
    # bias = O(1/n): n * bias converges (differences shrink geometrically)
    nb = bias * np.array([2, 4, 8, 16, 32])
    assert abs(nb[-1] - nb[-2]) < abs(nb[1] - nb[0])
    # n * Var -> the delta-method variance sum p^2/q (f - mu)^2 (within O(1/n) = 6%)
    assert_allclose(32 * variances[-1], ex.sn_asymptotic_variance * 1, rtol=0.1, atol=0)
    assert_allclose(ex.sn_limit, P @ F, rtol=1e-14, atol=0)


def test_self_normalised_enumeration_against_brute_force_tuples():
    n = 3
    w = P / Q
    mean = m2 = 0.0
    for tup in itertools.product(range(4), repeat=n):
        t = list(tup)
        prob = np.prod(Q[t])
        val = np.sum(w[t] * F[t]) / np.sum(w[t])
        mean += prob * val
        m2 += prob * val ** 2
    m, v = exact_self_normalised_moments(F, P, Q, n)
    # two exact finite sums in different orders
    assert_allclose(m, mean, rtol=1e-13, atol=1e-15)
    assert_allclose(v, m2 - mean ** 2, rtol=1e-11, atol=1e-15)


def test_log_space_weights_survive_huge_log_ratios():
    lp = np.array([-1000.0, -1001.0, -1002.0])
    lq = np.array([-2000.0, -2000.0, -2000.0])
    est = importance_sampling_estimate(np.ones(3), lp, lq, self_normalised=True)
    # all weights ~ e^1000 (overflow in linear space); SN estimate of f = 1 is exactly 1
    assert_allclose(est.value, 1.0, rtol=1e-15, atol=0)
    w = np.exp([0.0, -1.0, -2.0])
    assert_allclose(est.ess, w.sum() ** 2 / (w ** 2).sum(), rtol=1e-14, atol=0)
    with pytest.raises(ValueError, match="overflows"):
        importance_sampling_estimate(np.ones(3), lp, lq)


def test_ess_bounds_and_weights():
    assert_allclose(effective_sample_size(np.zeros(7)), 7.0, rtol=1e-15, atol=0)
    assert_allclose(effective_sample_size(np.array([0.0, -np.inf, -np.inf])), 1.0,
                    rtol=1e-15, atol=0)
    lw = log_importance_weights(np.log(P), np.log(Q))
    assert_allclose(np.exp(lw), P / Q, rtol=1e-15, atol=0)


def test_invalid_inputs_raise():
    with pytest.raises(ValueError, match="cannot have been drawn from q"):
        log_importance_weights([0.0, -1.0], [-np.inf, -1.0])
    with pytest.raises(ValueError, match="NaN"):
        log_importance_weights([np.nan], [0.0])
    with pytest.raises(ValueError, match="every importance weight is zero"):
        importance_sampling_estimate([1.0], [-np.inf], [0.0])
    with pytest.raises(ValueError, match="sum to 1"):
        exact_importance_moments(F, P * 2, Q)
