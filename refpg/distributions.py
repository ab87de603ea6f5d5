"""Categorical and diagonal-Gaussian distributions: log-densities, entropy, KL.

The building blocks every policy uses (derivations/distributions.md). All
functions are vectorised over leading axes and

* stable for logits of magnitude 1e3 and beyond: ``exp`` is only ever taken of
  a logit minus the largest logit (or of a quantity bounded above, see (D3b)),
  so nothing overflows and nothing that matters underflows;
* accurate where the naive formulas cancel: ``log sum exp`` uses ``log1p`` of
  the non-maximal terms (near-deterministic softmax), and both KLs are sums of
  non-negative terms ``e^x - 1 - x`` evaluated without cancellation, so a KL
  of ``1e-20`` comes out with full relative accuracy and never negative;
* complex-safe: maxima, argmaxima and branch choices look at the real part
  only and every branch is the same analytic function, so complex-step
  derivatives ``Im f(theta + i h e_k) / h`` pass through unchanged.

KL direction is in the name and the docstring: ``kl_categorical(p, q)`` is
``KL(p || q) = sum_a p(a) log(p(a)/q(a))``.

The public functions validate their arguments (finite, matching shapes);
policies call the private ``_``-prefixed kernels on already-validated data.
"""
from __future__ import annotations

import math

import numpy as np

from .validation import as_float_array

__all__ = ["log_softmax", "softmax", "categorical_entropy", "kl_categorical",
           "diag_gaussian_log_prob", "diag_gaussian_entropy", "kl_diag_gaussian"]

_LOG_2PI = float(np.log(2.0 * np.pi))

#: |Re x| below which ``e^x - 1 - x`` is summed as a Taylor series (D7).
_SERIES_RADIUS = 0.5
#: Taylor coefficients 1/n!, n = 2..17: the first omitted term at |x| = 0.5 is
#: 0.5^18/18! ~ 6e-22, i.e. 5e-21 relative to x^2/2.
_INV_FACT = tuple(1.0 / math.factorial(n) for n in range(2, 18))
#: (D3b) is used while every log(p_a e^{v_a}) = log q_a + KL stays below this.
_LOG_OVERFLOW_GUARD = 600.0


# --------------------------------------------------------------------------- kernels
def _expm1mx(x):
    """``phi(x) = e^x - 1 - x`` (D7) without cancellation; complex-safe.

    ``|Re x| <= 1/2``: Horner sum of ``x^n / n!``, ``n = 2..17`` (relative
    error ~ machine epsilon); otherwise ``expm1(x) - x``, where the two terms
    do not cancel (``phi(x) >= 0.1 |x|`` there). ``phi >= 0`` for real ``x``.
    """
    x = np.asarray(x)
    small = np.abs(np.real(x)) <= _SERIES_RADIUS
    xs = np.where(small, x, 0.0)
    acc = np.full_like(xs, _INV_FACT[-1])
    for c in _INV_FACT[-2::-1]:
        acc = acc * xs + c
    series = acc * xs * xs
    xl = np.where(small, 0.0, x)
    return np.where(small, series, np.expm1(xl) - xl)


def _centre_on(p, u):
    """``u - m`` with ``m = sum_a p_a u_a / sum_a p_a``, computed as
    ``u_k + sum_a p_a (u_a - u_k) / sum_a p_a`` (``k = argmax Re p``) so that a
    constant ``u`` (a pure shift of the logits) gives exactly zero.
    """
    k = np.argmax(np.real(p), axis=-1)[..., None]
    uk = np.take_along_axis(u, k, axis=-1)
    d = u - uk
    return d - np.sum(p * d, axis=-1, keepdims=True) / np.sum(p, axis=-1, keepdims=True)


def _log_softmax(z):
    """(D1) along the last axis, ``z: (..., A)``; no validation.

    With ``k = argmax Re z``: ``log p_k = -log1p(sum_{b != k} e^{z_b - z_k})`` and
    ``log p_a = (z_a - z_k) + log p_k``. Every exponent has real part ``<= 0``;
    ``log1p`` keeps full accuracy when the other terms are tiny
    (near-deterministic policies); and shifting by the complex ``z_k`` itself
    (not its real part) keeps the complex-step derivative of ``log p_k`` free
    of the cancellation ``h - h (1 - p_others)``.
    """
    z = np.asarray(z)
    k = np.argmax(np.real(z), axis=-1)[..., None]
    shifted = z - np.take_along_axis(z, k, axis=-1)
    is_top = np.arange(z.shape[-1]) == k
    rest = np.sum(np.exp(np.where(is_top, -np.inf, shifted)), axis=-1, keepdims=True)
    return shifted - np.log1p(rest)


def _kl_categorical(zp, zq):
    """(D3) ``KL(softmax(zp) || softmax(zq))`` along the last axis; no validation.

    Small and moderate KL (every ``log q_a + KL < 600``), (D3b):
    ``KL = log1p(sum_a p_a phi(v_a))``, ``v = m - (zp - zq)``,
    ``m = sum_a p_a (zp - zq)_a / sum_a p_a`` (both taken relative to the top
    action ``k`` of ``p``); each term is ``>= 0``.
    Huge KL (``> 600``, only reachable with logits of magnitude > 300), (D3):
    ``sum_a p_a (log p_a - log q_a)``, where no cancellation can occur.
    """
    zp, zq = np.asarray(zp), np.asarray(zq)
    logp = _log_softmax(zp)
    p = np.exp(logp)
    k = np.argmax(np.real(zp), axis=-1)[..., None]   # the top action of p
    u = zp - zq
    d = u - np.take_along_axis(u, k, axis=-1)
    mbar = np.sum(p * d, axis=-1, keepdims=True) / np.sum(p, axis=-1, keepdims=True)
    v = mbar - d                                     # exactly 0 for a pure shift
    # w_a = log(p_a e^{v_a}) = log q_a + KL, written without z_p,a so that neither its
    # value nor its complex-step derivative cancels: logp_a - d_a = zq_a - zq_k + logp_k
    w = (zq - np.take_along_axis(zq, k, axis=-1)) + np.take_along_axis(logp, k, axis=-1) + mbar
    ok = np.max(np.real(w), axis=-1, keepdims=True) < _LOG_OVERFLOW_GUARD
    below = ok & (np.real(v) <= _SERIES_RADIUS)   # phi(v) via (D7): no overflow
    above = ok & ~below                           # v > 1/2: p e^v - p - p v, no cancellation
    t = np.where(below, p * _expm1mx(np.where(below, v, 0.0)), 0.0)
    wa = np.where(above, w, 0.0)
    t = t + np.where(above, np.exp(wa) - p - p * np.where(above, v, 0.0), 0.0)
    accurate = np.log1p(np.sum(t, axis=-1))
    direct = np.sum(p * (logp - _log_softmax(zq)), axis=-1)
    return np.where(ok[..., 0], accurate, direct)


def _softmax_difference(z_new, z_old):
    """``softmax(z_new) - softmax(z_old)`` along the last axis (D8), relatively accurate.

    With ``dz = z_new - z_old - m``, ``m = sum_a p_old,a (z_new - z_old)_a``:
    ``log p_new - log p_old = dz - log1p(sum_b p_old,b expm1(dz_b))`` and
    ``p_new - p_old = p_old expm1(log p_new - log p_old)``: no difference of two
    nearly equal probabilities is ever formed, so the result is accurate relative to
    ``|p_new - p_old|`` however close the two logit vectors are (the plain difference
    is only accurate to ``eps max(p_new, p_old)``). Entries whose exponent would
    exceed the overflow guard (a probability ratio ~e^600, only reachable with logits
    of magnitude > 300) fall back to the plain difference. No validation.
    """
    z_new, z_old = np.asarray(z_new), np.asarray(z_old)
    dlogp, ok, p_old = _softmax_log_ratio(z_new, z_old)
    accurate = p_old * np.expm1(np.where(ok, dlogp, 0.0))
    return np.where(ok, accurate, np.exp(_log_softmax(z_new)) - p_old)


def _softmax_log_ratio(z_new, z_old):
    """``(log p_new - log p_old, ok, p_old)`` along the last axis by (D8), from the logits.

    ``dz - log1p(sum_b p_old,b expm1(dz_b))`` with ``dz`` the centred logit change:
    accurate relative to the change itself (a difference of two log-probabilities is
    only accurate to ``eps |log p|``). ``ok`` is False where the overflow guard applies
    (the value there is meaningless; callers fall back to the plain difference).
    Shared by ``_softmax_difference`` and the surrogate's ratios. No validation.
    """
    p_old = np.exp(_log_softmax(z_old))
    dz = _centre_on(p_old, z_new - z_old)
    ok_state = np.max(np.real(dz), axis=-1, keepdims=True) < _LOG_OVERFLOW_GUARD
    dz_ok = np.where(ok_state, dz, 0.0)
    dlogp = dz_ok - np.log1p(np.sum(p_old * np.expm1(dz_ok), axis=-1, keepdims=True))
    ok = ok_state & (np.real(dlogp) < _LOG_OVERFLOW_GUARD)
    return dlogp, ok, p_old


def _categorical_entropy(z):
    """(D2) ``-sum_a p_a log p_a`` along the last axis; no validation."""
    logp = _log_softmax(z)
    return -np.sum(np.exp(logp) * logp, axis=-1)


# --------------------------------------------------------------------------- validation
def _logits(name, x, axis):
    arr = as_float_array(name, x, allow_complex=True)
    if arr.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension (the actions); got a scalar")
    arr = np.moveaxis(arr, axis, -1)
    if arr.shape[-1] == 0:
        raise ValueError(f"{name} must hold at least one action along axis {axis}; "
                         f"got shape {np.shape(x)}")
    return arr


# --------------------------------------------------------------------------- categorical
def log_softmax(logits, axis=-1):
    """``log softmax(z)_a = z_a - log sum_b exp(z_b)`` (D1), stable and complex-safe.

    ``logits: (..., A)`` (``A`` along ``axis``) -> same shape.
    derivations/distributions.md#categorical
    """
    z = _logits("logits", logits, axis)
    return np.moveaxis(_log_softmax(z), -1, axis)


def softmax(logits, axis=-1):
    """``softmax(z) = exp(log_softmax(z))`` (D1). derivations/distributions.md#categorical"""
    return np.exp(log_softmax(logits, axis=axis))


def categorical_entropy(logits, axis=-1):
    """``H(p) = -sum_a p_a log p_a`` with ``p = softmax(logits)`` (D2).

    ``logits: (..., A)`` -> ``(...)``. derivations/distributions.md#categorical
    """
    return _categorical_entropy(_logits("logits", logits, axis))


def kl_categorical(p_logits, q_logits, axis=-1):
    """``KL(p || q) = sum_a p_a (log p_a - log q_a)`` (D3), ``p = softmax(p_logits)``.

    ``p_logits, q_logits: (..., A)``, same shape -> ``(...)``. Evaluated as
    (D3b), a ``log1p`` of non-negative terms: exactly zero when the logits are
    equal (or differ by a constant), never negative, and relatively accurate
    down to the smallest KLs. derivations/distributions.md#categorical
    """
    zp = _logits("p_logits", p_logits, axis)
    zq = _logits("q_logits", q_logits, axis)
    if zp.shape != zq.shape:
        raise ValueError(f"p_logits {np.shape(p_logits)} and q_logits {np.shape(q_logits)} "
                         f"must have the same shape")
    return _kl_categorical(zp, zq)


# --------------------------------------------------------------------------- Gaussian
def _gaussian_args(**arrays):
    out = {k: as_float_array(k, v, allow_complex=True) for k, v in arrays.items()}
    for k, v in out.items():
        if v.ndim == 0:
            raise ValueError(f"{k} must have at least one dimension (the action components); "
                             f"got a scalar")
    return out


def _check_log_std(name, log_std, ref_name, ref):
    if log_std.shape != ref.shape and log_std.shape != ref.shape[-1:]:
        raise ValueError(f"{name} must have the shape of {ref_name} {ref.shape} or "
                         f"({ref.shape[-1]},); got {log_std.shape}")


def diag_gaussian_log_prob(x, mean, log_std):
    """``log N(x; mean, diag(exp(2 log_std)))`` summed over the last axis (D4):

    ``sum_i [-(x_i - mu_i)^2 / (2 sigma_i^2) - log sigma_i - 1/2 log(2 pi)]``.
    ``x, mean: (..., m)`` (same shape), ``log_std: (..., m)`` or ``(m,)`` -> ``(...)``.
    derivations/distributions.md#diagonal-gaussian
    """
    a = _gaussian_args(x=x, mean=mean, log_std=log_std)
    x, mean, log_std = a["x"], a["mean"], a["log_std"]
    if x.shape != mean.shape:
        raise ValueError(f"x {x.shape} and mean {mean.shape} must have the same shape")
    _check_log_std("log_std", log_std, "mean", mean)
    z = (x - mean) * np.exp(-log_std)
    return np.sum(-0.5 * z * z - log_std - 0.5 * _LOG_2PI, axis=-1)


def diag_gaussian_entropy(log_std):
    """``H = sum_i (log_std_i + 1/2 log(2 pi e))`` (D5), ``log_std: (..., m)`` -> ``(...)``.

    derivations/distributions.md#diagonal-gaussian
    """
    log_std = _gaussian_args(log_std=log_std)["log_std"]
    return np.sum(log_std + 0.5 * (_LOG_2PI + 1.0), axis=-1)


def kl_diag_gaussian(mean_p, log_std_p, mean_q, log_std_q):
    """``KL(p || q)`` for diagonal Gaussians, summed over the last axis (D6):

    ``sum_i [log s_q/s_p + (s_p^2 + (m_p - m_q)^2) / (2 s_q^2) - 1/2]``
    ``= sum_i [phi(2 delta_i) / 2 + ((m_p - m_q)_i / s_q,i)^2 / 2]``,
    ``delta = log s_p - log s_q``, ``phi(x) = e^x - 1 - x`` (D7): non-negative
    terms, exact zero when ``p = q``, no cancellation for close distributions.
    ``mean_p, mean_q: (..., m)`` (same shape); ``log_std_p, log_std_q``: that
    shape or ``(m,)``. derivations/distributions.md#diagonal-gaussian
    """
    a = _gaussian_args(mean_p=mean_p, log_std_p=log_std_p, mean_q=mean_q, log_std_q=log_std_q)
    if a["mean_p"].shape != a["mean_q"].shape:
        raise ValueError(f"mean_p {a['mean_p'].shape} and mean_q {a['mean_q'].shape} must "
                         f"have the same shape")
    _check_log_std("log_std_p", a["log_std_p"], "mean_p", a["mean_p"])
    _check_log_std("log_std_q", a["log_std_q"], "mean_q", a["mean_q"])
    delta = a["log_std_p"] - a["log_std_q"]
    diff = (a["mean_p"] - a["mean_q"]) * np.exp(-a["log_std_q"])
    return np.sum(0.5 * _expm1mx(2.0 * delta) + 0.5 * diff * diff, axis=-1)
