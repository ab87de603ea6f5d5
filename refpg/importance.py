"""Importance sampling, exactly and by sampling (SCOPE N10).

For a target ``p`` and a behaviour (proposal) ``q`` on the same space, with
``w(x) = p(x) / q(x)`` (CONVENTIONS.md: target over behaviour), see
derivations/importance.md:

    E_p[f] = E_q[w f]                     if q(x) > 0 wherever p(x) f(x) != 0   (IS1)
    mu_IS  = 1/n sum_i w(x_i) f(x_i),   x_i ~ q iid                             (IS2)
    E[mu_IS] = sum_{x: q(x) > 0} p(x) f(x)   (= E_p[f] minus the missing mass)  (IS3)
    Var[mu_IS] = (sum_{q > 0} p^2 f^2 / q - E[mu_IS]^2) / n                     (IS4)
    mu_SN  = sum_i w_i f_i / sum_i w_i      (self-normalised; biased, O(1/n))   (IS5)
    ESS    = (sum_i w_i)^2 / sum_i w_i^2                                        (IS6)

Weights are handled in log space (``log w = log p - log q``), shifted by
their maximum before exponentiating, so log-weights of size 1e3 neither
overflow nor underflow.

When ``q(x) = 0`` somewhere ``p(x) > 0`` no sample can ever land on ``x``:
the estimator (IS2) is then unbiased for (IS3), not for ``E_p[f]``, and no
amount of sampling reveals it. ``exact_importance_moments`` detects this on
finite spaces and raises (or, on request, reports the bias).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from .validation import as_float_array, check_positive_int, check_probabilities

__all__ = ["log_importance_weights", "ImportanceEstimate", "importance_sampling_estimate",
           "effective_sample_size", "support_mismatch", "ExactImportanceMoments",
           "exact_importance_moments", "exact_self_normalised_moments"]


def log_importance_weights(log_target, log_behaviour):
    """``log w_i = log p(x_i) - log q(x_i)`` (IS1): ``(n,)``.

    ``log_target, log_behaviour: (n,)`` evaluated at samples ``x_i ~ q``.
    ``log_target`` may be ``-inf`` (weight 0); ``log_behaviour`` must be
    finite, since a sample with ``q(x_i) = 0`` cannot have been drawn from
    ``q`` (``ValueError`` names its index). NaN is rejected.
    derivations/importance.md#the-estimator
    """
    lp = as_float_array("log_target", log_target, ndim=1, finite=False)
    lq = as_float_array("log_behaviour", log_behaviour, shape=lp.shape, finite=False)
    if np.any(np.isnan(lp)) or np.any(lp == np.inf):
        raise ValueError("log_target must not contain NaN or +inf")
    bad = ~np.isfinite(lq)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"log_behaviour must be finite at every sample: sample {i} has "
                         f"log q = {lq[i]}, i.e. q(x) = 0, so it cannot have been drawn "
                         f"from q (wrong behaviour log-probabilities?)")
    return lp - lq


def effective_sample_size(log_weights):
    """``ESS = (sum w)^2 / sum w^2`` (IS6), computed in log space; ``log_weights: (n,)``.

    ``1 <= ESS <= n``; equal weights give ``n``. ``ValueError`` if every
    weight is zero. derivations/importance.md#effective-sample-size
    """
    lw = as_float_array("log_weights", log_weights, ndim=1, finite=False)
    if lw.size == 0 or np.any(np.isnan(lw)) or np.any(lw == np.inf):
        raise ValueError("log_weights must be a non-empty vector without NaN or +inf")
    if np.all(lw == -np.inf):
        raise ValueError("every importance weight is zero: the ESS is undefined")
    ws = np.exp(lw - np.max(lw))          # shift by the maximum: no overflow, no log error
    return float(np.sum(ws) ** 2 / np.sum(ws * ws))


@dataclass(frozen=True)
class ImportanceEstimate:
    """A sampled importance-sampling estimate (IS2 or IS5).

    ``value``; ``std_error`` (IS2: sample standard deviation of ``w f`` over
    ``sqrt(n)``; IS5: the delta-method ``sqrt(sum wbar_i^2 (f_i - value)^2)``
    with ``wbar = w / sum w``); ``ess`` (IS6); ``n``; ``max_weight_share =
    max_i w_i / sum w``; ``self_normalised``; ``log_weights: (n,)``.
    derivations/importance.md#the-estimator
    """

    value: float
    std_error: float
    ess: float
    n: int
    max_weight_share: float
    self_normalised: bool
    log_weights: np.ndarray


def importance_sampling_estimate(f_values, log_target, log_behaviour, *,
                                 self_normalised=False):
    """Estimate ``E_p[f]`` from ``x_i ~ q``: ordinary (IS2) or self-normalised (IS5).

    ``f_values, log_target, log_behaviour: (n,)``. The weights are
    ``exp(log w - max log w)`` times ``exp(max log w)``, so huge or tiny
    log-weights are exact. Unbiased (IS2) only if ``q > 0`` wherever
    ``p f != 0`` (see ``exact_importance_moments``); IS5 is biased at finite
    ``n`` (``exact_self_normalised_moments``). Returns ``ImportanceEstimate``.
    derivations/importance.md#the-estimator
    """
    lw = log_importance_weights(log_target, log_behaviour)
    f = as_float_array("f_values", f_values, shape=lw.shape)
    n = lw.size
    if n == 0:
        raise ValueError("need at least one sample; got n = 0")
    if np.all(lw == -np.inf):
        raise ValueError("every importance weight is zero (p = 0 at every sample): the "
                         "estimate carries no information")
    m = float(np.max(lw))
    ws = np.exp(lw - m)                       # scaled weights, max 1
    share = float(1.0 / np.sum(ws))
    ess = effective_sample_size(lw)
    if self_normalised:
        wbar = ws / np.sum(ws)
        value = float(wbar @ f)
        se = float(np.sqrt(np.sum(wbar ** 2 * (f - value) ** 2)))
    else:
        scale = math.exp(m) if m < 709.0 else math.inf
        terms = ws * f
        value = float(np.mean(terms) * scale)
        se = float(np.std(terms, ddof=1) * scale / np.sqrt(n)) if n > 1 else math.inf
        if not np.isfinite(value):
            raise ValueError(f"the importance-sampling estimate overflows float64 "
                             f"(max log-weight {m:.1f}); use self_normalised=True")
    return ImportanceEstimate(value=value, std_error=se, ess=ess, n=n,
                              max_weight_share=share, self_normalised=bool(self_normalised),
                              log_weights=lw)


def _finite_space(f, p, q):
    p = as_float_array("p", p, ndim=1)
    q = as_float_array("q", q, shape=p.shape)
    f = as_float_array("f", f, shape=p.shape)
    check_probabilities("p", p)
    check_probabilities("q", q)
    return f, p, q


def support_mismatch(p, q, f=None):
    """Outcomes where the target has mass the behaviour cannot reach: indices with ``q = 0 < p``.

    ``p, q: (K,)`` probability vectors; with ``f: (K,)`` only outcomes where
    also ``f != 0`` are returned (those bias (IS2)). Returns ``(indices,
    missing_mass)`` with ``missing_mass = sum p`` over them.
    derivations/importance.md#when-q-has-no-mass-where-p-does
    """
    f_ = np.ones_like(np.asarray(p, dtype=float)) if f is None else f
    f_, p, q = _finite_space(f_, p, q)
    idx = np.flatnonzero((q == 0) & (p > 0) & (f_ != 0))
    return idx, float(np.sum(p[idx]))


@dataclass(frozen=True)
class ExactImportanceMoments:
    """Exact moments of the importance-sampling estimators on a finite space.

    ``target = E_p[f]``; ``mean = E[mu_IS]`` (IS3); ``bias = mean - target``
    (nonzero only with a support mismatch); ``variance = Var[mu_IS]`` for
    ``n`` samples (IS4); ``second_moment_ratio = E_q[w^2] = sum p^2/q`` (so
    ``n / E_q[w^2]`` is the population ESS); ``sn_limit`` the value the
    self-normalised estimator converges to and ``sn_asymptotic_variance`` its
    delta-method variance ``sum p^2/q (f - sn_limit)^2 / (n mass^2)``;
    ``missing_support`` (indices with ``q = 0 < p``, ``f != 0``) and
    ``missing_mass``. derivations/importance.md#exact-moments
    """

    target: float
    mean: float
    bias: float
    variance: float
    n: int
    second_moment_ratio: float
    sn_limit: float
    sn_asymptotic_variance: float
    missing_support: np.ndarray
    missing_mass: float


def exact_importance_moments(f, p, q, *, n=1, allow_missing_support=False):
    """Exact mean, bias and variance of (IS2) with ``n`` samples, by (IS3)-(IS4).

    ``f, p, q: (K,)``. If ``q = 0 < p`` at an outcome where ``f != 0`` the
    estimator is biased by ``-sum p f`` over those outcomes: ``ValueError``
    names them unless ``allow_missing_support=True``, in which case the
    record reports the bias. derivations/importance.md#exact-moments
    """
    f, p, q = _finite_space(f, p, q)
    n = check_positive_int("n", n)
    idx, missing = support_mismatch(p, q, f)
    if idx.size and not allow_missing_support:
        raise ValueError(f"q has no mass where p does: q(x) = 0 < p(x) at outcome(s) "
                         f"{idx[:10].tolist()} (target mass {missing:.3e} with f != 0); "
                         f"importance sampling from q is biased for E_p[f] by "
                         f"{-float(np.sum(p[idx] * f[idx])):.6e}. Pass "
                         f"allow_missing_support=True to get the biased moments.")
    pos = q > 0
    target = float(p @ f)
    mean = float(np.sum(p[pos] * f[pos]))
    m2 = float(np.sum(p[pos] ** 2 * f[pos] ** 2 / q[pos]))
    ratio = float(np.sum(p[pos] ** 2 / q[pos]))
    mass = float(np.sum(p[pos]))
    if mass > 0:
        sn = mean / mass
        sn_var = float(np.sum(p[pos] ** 2 / q[pos] * (f[pos] - sn) ** 2)) / (n * mass ** 2)
    else:
        sn, sn_var = math.nan, math.nan
    return ExactImportanceMoments(target=target, mean=mean, bias=mean - target,
                                  variance=(m2 - mean ** 2) / n, n=n,
                                  second_moment_ratio=ratio, sn_limit=sn,
                                  sn_asymptotic_variance=sn_var, missing_support=idx,
                                  missing_mass=missing)


def exact_self_normalised_moments(f, p, q, n):
    """Exact mean and variance of (IS5) with ``n`` samples, by enumerating the multinomial counts.

    ``f, p, q: (K,)``; ``q`` must cover ``p`` (``ValueError`` otherwise) so that
    ``sum w > 0`` almost surely. Cost ``C(n + K' - 1, K' - 1)`` terms for the
    ``K'`` outcomes with ``q > 0``: small ``n`` and ``K`` only (at most 2e5
    terms). Returns ``(mean, variance)``. derivations/importance.md#self-normalised-estimator
    """
    f, p, q = _finite_space(f, p, q)
    n = check_positive_int("n", n)
    idx, _ = support_mismatch(p, q)
    if idx.size:
        raise ValueError(f"q must be positive wherever p is; q = 0 < p at {idx[:10].tolist()}")
    pos = np.flatnonzero(q > 0)
    K = pos.size
    if math.comb(n + K - 1, K - 1) > 200_000:
        raise ValueError(f"too many count vectors (C({n + K - 1}, {K - 1}) > 2e5); "
                         f"reduce n or the support")
    w, fv, qv = p[pos] / q[pos], f[pos], q[pos]
    logq = np.log(qv)
    lgn = math.lgamma(n + 1)
    mean = 0.0
    m2 = 0.0
    for combo in itertools.combinations_with_replacement(range(K), n):
        c = np.bincount(np.asarray(combo), minlength=K)
        logprob = lgn - sum(math.lgamma(ci + 1) for ci in c) + float(c @ logq)
        prob = math.exp(logprob)
        sw = float(c @ w)
        if sw == 0.0:
            raise ValueError(f"with probability {prob:.3e} every sample has p = 0 (count "
                             f"vector {c.tolist()}): the self-normalised estimate is 0/0")
        value = float(c @ (w * fv)) / sw
        mean += prob * value
        m2 += prob * value * value
    return mean, m2 - mean * mean
