"""refpg.distributions: categorical and diagonal-Gaussian densities, entropies, KLs (D1)-(D8).

Independent routes: scipy.stats / scipy.special, 60-digit ``decimal`` arithmetic
(exact to double precision), numerical quadrature of the KL integral, and the
complex-step derivative against the closed-form gradients of the note.
"""
import math
from decimal import Decimal, localcontext

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp
from scipy import integrate, special, stats

from refpg.distributions import (categorical_entropy, diag_gaussian_entropy,
                                 diag_gaussian_log_prob, kl_categorical, kl_diag_gaussian,
                                 log_softmax, softmax)
from refpg.testing import check_gradient

EPS = np.finfo(float).eps


def logit_rows(max_abs=1e3, n_actions=st.integers(1, 6)):
    """Strategy of ``(3, A)`` logit arrays with entries in ``[-max_abs, max_abs]``."""
    return n_actions.flatmap(lambda A: hnp.arrays(
        np.float64, (3, A), fill=st.nothing(),
        elements=st.floats(-max_abs, max_abs, allow_nan=False, allow_infinity=False)))


# --- references in 60-digit decimal arithmetic -----------------------------------------------

def _dec_log_softmax(z):
    with localcontext() as ctx:
        ctx.prec = 60
        D = [Decimal(float(v)) for v in z]
        k = max(range(len(D)), key=lambda i: D[i])
        s = sum(((d - D[k]).exp() for i, d in enumerate(D) if i != k), Decimal(0))
        # ln(1 + s) by its series for tiny s: 60 digits of 1 + s would keep too few of s
        log1p = s - s * s / 2 + s * s * s / 3 if s < Decimal("1e-20") else (1 + s).ln()
        return [d - D[k] - log1p for d in D]


def _dec_kl(zp, zq):
    with localcontext() as ctx:
        ctx.prec = 60
        lp, lq = _dec_log_softmax(zp), _dec_log_softmax(zq)
        return float(sum(a.exp() * (a - b) for a, b in zip(lp, lq)))


# --- categorical (D1)-(D3) ----------------------------------------------------------------------

@given(logit_rows())
def test_log_softmax_matches_decimal_and_is_normalised(z):
    logp = log_softmax(z)
    for row, lp in zip(z, logp):
        ref = [float(v) for v in _dec_log_softmax(row)]
        # absolute rounding of z_a - m is eps |z|; log1p of the rest is relatively exact
        np.testing.assert_allclose(lp, ref, rtol=1e-15, atol=2 * EPS * (1 + np.max(np.abs(row))))
    np.testing.assert_allclose(softmax(z).sum(axis=-1), 1.0, rtol=0, atol=8 * EPS)
    assert logp.dtype == np.float64 and np.all(logp <= 0)


def test_log_softmax_axis_argument_and_near_deterministic_accuracy():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4, 3))
    np.testing.assert_array_equal(log_softmax(z, axis=0), log_softmax(z.T).T)
    # logits (30, 0, 0): log p_0 = -log(1 + 2 e^{-30}); float64 of 1 + 2e^{-30} loses
    # 3 digits of the tiny part, log1p does not. Reference: math.log1p (correctly rounded).
    np.testing.assert_allclose(log_softmax([30.0, 0.0, 0.0])[0], -math.log1p(2 * math.exp(-30)),
                               rtol=1e-15, atol=0)


@given(logit_rows(max_abs=30.0))
def test_log_softmax_jacobian_is_identity_minus_probabilities_by_complex_step(z):
    row = z[0]
    p = softmax(row)
    # (D1'): d log p_a / d z_b = delta_ab - p_b
    res = check_gradient(lambda t: log_softmax(t), row, np.eye(row.size) - p[None, :])
    assert res.passed, str(res)


@given(logit_rows())
def test_categorical_entropy_matches_scipy_and_decimal(z):
    H = categorical_entropy(z)
    for row, h in zip(z, H):
        with localcontext() as ctx:
            ctx.prec = 60
            lp = _dec_log_softmax(row)
            ref = float(-sum(v.exp() * v for v in lp))
        # -sum p log p: non-negative terms, relative accuracy
        np.testing.assert_allclose(h, ref, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(H, stats.entropy(softmax(z), axis=-1), rtol=1e-10, atol=1e-15)
    assert np.all(H >= 0) and np.all(H <= np.log(z.shape[-1]) * (1 + 4 * EPS))


@given(logit_rows(), logit_rows(max_abs=1.0), st.sampled_from([0.0, 1e-9, 1e-4, 1.0, 1e3]))
def test_kl_categorical_matches_decimal_nonnegative_and_zero_at_equality(zp, dz, scale):
    if dz.shape != zp.shape:
        dz = np.resize(dz, zp.shape)
    zq = zp + scale * dz
    kl = kl_categorical(zp, zq)
    assert np.all(kl >= 0)
    ref = np.array([_dec_kl(a, b) for a, b in zip(zp, zq)])
    # relative accuracy up to the rounding of the inputs: eps |z| times |dKL/dz| <= 2 |dz|
    atol = 4 * EPS * (1 + np.max(np.abs(zp), axis=1)) * np.minimum(2 * scale * np.max(
        np.abs(dz), axis=1), 2.0)
    # + 1e-55: the 60-digit reference's own absolute error on O(1) log-probabilities
    assert np.all(np.abs(kl - ref) <= 1e-12 * ref + atol + 1e-55), (kl, ref)
    # KL(p, p) = 0 up to rounding that is not bit-reproducible: NumPy's SIMD exp/log
    # round differently in the vectorised body and the scalar tail of an array, so two
    # copies of the same logits at different alignments can differ in the last bit
    # (measured: 1.3e-34). eps^2 of the logits' scale bounds it.
    tiny = 4 * EPS ** 2 * (1 + np.max(np.abs(zp), axis=1))
    assert np.all(np.abs(kl_categorical(zp, zp)) <= tiny)
    assert np.all(np.abs(kl_categorical(zp, zp + 7.0)) <= tiny + 4 * EPS * 7.0 * EPS)


def test_kl_categorical_matches_scipy_rel_entr_and_tiny_kl_keeps_relative_accuracy():
    rng = np.random.default_rng(1)
    zp, zq = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    ref = special.rel_entr(softmax(zp), softmax(zq)).sum(axis=-1)
    np.testing.assert_allclose(kl_categorical(zp, zq), ref, rtol=1e-12, atol=1e-15)
    # KL(z, z + 1e-9 v) ~ 5e-19: a naive sum p (log p - log q) has absolute error ~1e-16
    v = rng.normal(size=(5, 4))
    kl = kl_categorical(zp, zp + 1e-9 * v)
    ref = np.array([_dec_kl(a, a + 1e-9 * b) for a, b in zip(zp, v)])
    np.testing.assert_allclose(kl, ref, rtol=1e-6, atol=0)  # input rounding eps|z|/1e-9 ~ 1e-7


def test_kl_categorical_huge_values_use_the_direct_form_exactly():
    # KL((1000, -1000) || (-1000, 1000)) = 2000 (1 - 2 e^{-2000}) + ...: 2000 to double precision
    np.testing.assert_allclose(kl_categorical([1000.0, -1000.0], [-1000.0, 1000.0]), 2000.0,
                               rtol=1e-15, atol=0)
    np.testing.assert_allclose(kl_categorical([0.0, 0.0], [0.0, 900.0]),
                               _dec_kl([0.0, 0.0], [0.0, 900.0]), rtol=1e-14, atol=0)


@given(logit_rows(max_abs=30.0), logit_rows(max_abs=30.0))
def test_kl_categorical_gradients_by_complex_step(zp, zq):
    if zq.shape != zp.shape:
        zq = np.resize(zq, zp.shape)
    # (D3'): d KL / d z_q = q - p;   d KL / d z_p = p * (log p - log q - KL),
    # evaluated in 60-digit decimal (in float64 both formulas cancel near p = q or p ~ 1)
    with localcontext() as ctx:
        ctx.prec = 60
        lp, lq = _dec_log_softmax(zp[0]), _dec_log_softmax(zq[0])
        kl = sum(a.exp() * (a - b) for a, b in zip(lp, lq))
        g_q = np.array([float(b.exp() - a.exp()) for a, b in zip(lp, lq)])
        g_p = np.array([float(a.exp() * (a - b - kl)) for a, b in zip(lp, lq)])
    for f, x, g in ((lambda t: kl_categorical(zp[0], t), zq[0], g_q),
                    (lambda t: kl_categorical(t, zq[0]), zp[0], g_p)):
        # 1e-9 of the largest component: with logits ~20 apart the gradient components
        # span many orders of magnitude, and the float64 evaluation (terms of size ~1
        # normalised into components ~1e-9 of the largest) leaves a normwise relative
        # error measured up to 1.5e-10, whose last digits depend on NumPy's SIMD
        # rounding (memory alignment); 1e-30: the complex step's own h^2 f'''/6 error
        # when the gradient is exactly 0
        atol = 1e-9 * np.max(np.abs(g)) + 1e-30
        res = check_gradient(f, x, g, atol=atol)
        assert res.passed, str(res)


def test_categorical_arguments_are_validated():
    with pytest.raises(ValueError, match="logits"):
        log_softmax([0.0, np.nan])
    with pytest.raises(ValueError, match="logits"):
        categorical_entropy(3.0)
    with pytest.raises(ValueError, match="logits"):
        softmax(np.zeros((2, 0)))
    with pytest.raises(ValueError, match="p_logits .* q_logits"):
        kl_categorical(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="q_logits"):
        kl_categorical(np.zeros(3), [0.0, np.inf, 0.0])
    with pytest.raises(TypeError, match="logits"):
        log_softmax(["a", "b"])


# --- diagonal Gaussian (D4)-(D7) ------------------------------------------------------------------

gaussians = st.integers(1, 4).flatmap(lambda m: st.tuples(*[hnp.arrays(
    np.float64, (m,), fill=st.nothing(),
    elements=st.floats(lo, hi, allow_nan=False)) for lo, hi in
    [(-5, 5), (-2, 2), (-5, 5), (-2, 2), (-8, 8)]]))


@given(gaussians)
def test_diag_gaussian_log_prob_and_entropy_match_scipy(args):
    mean, log_std, _, _, x = args
    sd = np.exp(log_std)
    np.testing.assert_allclose(diag_gaussian_log_prob(x, mean, log_std),
                               stats.norm.logpdf(x, mean, sd).sum(), rtol=1e-13, atol=1e-13)
    mvn = stats.multivariate_normal(mean, np.diag(sd ** 2))
    np.testing.assert_allclose(diag_gaussian_log_prob(x, mean, log_std), mvn.logpdf(x),
                               rtol=1e-10, atol=1e-10)  # scipy's eigh route: ~1e-12
    np.testing.assert_allclose(diag_gaussian_entropy(log_std), mvn.entropy(),
                               rtol=1e-12, atol=1e-12)
    # batched: (*B, m) with a shared (m,) log_std
    X = np.stack([x, x + 1.0])
    np.testing.assert_allclose(diag_gaussian_log_prob(X, np.stack([mean, mean]), log_std),
                               stats.norm.logpdf(X, mean, sd).sum(axis=-1), rtol=1e-13,
                               atol=1e-13)


@given(gaussians)
def test_kl_diag_gaussian_matches_quadrature_and_is_nonnegative(args):
    mp, lp, mq, lq, _ = args
    kl = kl_diag_gaussian(mp, lp, mq, lq)
    assert kl >= 0
    total = 0.0
    for i in range(mp.size):
        sp, sq = math.exp(lp[i]), math.exp(lq[i])

        def integrand(x, i=i, sp=sp, sq=sq):
            # p(x) (log p(x) - log q(x)), the definition of KL for one component
            a = stats.norm.logpdf(x, mp[i], sp)
            return math.exp(a) * (a - stats.norm.logpdf(x, mq[i], sq))
        lo, hi = mp[i] - 40 * sp, mp[i] + 40 * sp  # p is below 1e-300 outside
        val, err = integrate.quad(integrand, lo, hi, epsabs=1e-13, epsrel=1e-11, limit=200,
                                  points=[mp[i], mq[i]] if lo < mq[i] < hi else [mp[i]])
        total += val
    np.testing.assert_allclose(kl, total, rtol=1e-8, atol=1e-11)  # quad's requested accuracy


def test_kl_diag_gaussian_is_exact_at_equality_and_relatively_accurate_when_close():
    rng = np.random.default_rng(2)
    m, ls = rng.normal(size=3), rng.normal(size=3)
    assert kl_diag_gaussian(m, ls, m, ls) == 0.0
    for d in (1e-12, 1e-7, 1e-3, 0.4, 0.6, 3.0):
        # KL with equal means: 1/2 sum (e^{2 delta} - 1 - 2 delta); 60-digit reference
        delta = d * np.array([1.0, -0.5, 0.25])
        with localcontext() as ctx:
            ctx.prec = 60
            ref = float(sum((2 * Decimal(float(a) + 0.0)).exp() - 1 - 2 * Decimal(float(a))
                            for a in (ls + delta - ls)) / 2)
        np.testing.assert_allclose(kl_diag_gaussian(m, ls + delta, m, ls), ref, rtol=1e-13,
                                   atol=0)


@given(gaussians)
def test_kl_diag_gaussian_gradients_by_complex_step(args):
    mp, lp, mq, lq, _ = args
    sp2, sq2 = np.exp(2 * lp), np.exp(2 * lq)
    # (D6'): d/d m_q = (m_q - m_p)/s_q^2;  d/d log s_q = 1 - (s_p^2 + (m_p - m_q)^2)/s_q^2
    g_m = (mq - mp) / sq2
    g_l = 1.0 - (sp2 + (mp - mq) ** 2) / sq2
    for f, x, g in ((lambda t: kl_diag_gaussian(mp, lp, t, lq), mq, g_m),
                    (lambda t: kl_diag_gaussian(mp, lp, mq, t), lq, g_l)):
        res = check_gradient(f, x, g, atol=1e-10 * np.max(np.abs(g)) + 1e-30)
        assert res.passed, str(res)


def test_gaussian_arguments_are_validated():
    with pytest.raises(ValueError, match="x .* mean"):
        diag_gaussian_log_prob(np.zeros(3), np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="log_std"):
        diag_gaussian_log_prob(np.zeros(3), np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="mean_p .* mean_q"):
        kl_diag_gaussian(np.zeros(2), np.zeros(2), np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="log_std_q"):
        kl_diag_gaussian(np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(5))
    with pytest.raises(ValueError, match="mean"):
        diag_gaussian_log_prob(np.zeros(2), [np.nan, 0.0], np.zeros(2))
