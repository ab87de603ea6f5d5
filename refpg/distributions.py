"""Categorical and diagonal-Gaussian distributions: log-densities, entropy, KL.

The building blocks every policy uses (derivations/distributions.md). All
functions are vectorised over leading axes, stable for logits of magnitude
1e3 (log-sum-exp with the maximum subtracted, never ``exp`` of a raw logit)
and complex-safe (the maximum is taken over the real part), so complex-step
derivatives pass through them.

KL direction is in the name and the docstring: ``kl_categorical(p, q)`` is
``KL(p || q) = sum_a p(a) log(p(a)/q(a))``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["log_softmax", "softmax", "categorical_entropy", "kl_categorical",
           "diag_gaussian_log_prob", "diag_gaussian_entropy", "kl_diag_gaussian"]

_LOG_2PI = float(np.log(2.0 * np.pi))


def log_softmax(logits, axis=-1):
    """``log softmax(z)_a = z_a - log sum_b exp(z_b)`` (D1), stable and complex-safe.

    ``logits: (..., A)``. derivations/distributions.md#categorical
    """
    z = np.asarray(logits)
    m = np.max(np.real(z), axis=axis, keepdims=True)
    shifted = z - m
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def softmax(logits, axis=-1):
    """``softmax(z) = exp(log_softmax(z))`` (D1). derivations/distributions.md#categorical"""
    return np.exp(log_softmax(logits, axis=axis))


def categorical_entropy(logits, axis=-1):
    """``H(p) = -sum_a p_a log p_a`` with ``p = softmax(logits)`` (D2).

    ``logits: (..., A)`` -> ``(...)``. derivations/distributions.md#categorical
    """
    logp = log_softmax(logits, axis=axis)
    return -np.sum(np.exp(logp) * logp, axis=axis)


def kl_categorical(p_logits, q_logits, axis=-1):
    """``KL(p || q) = sum_a p_a (log p_a - log q_a)`` (D3), ``p = softmax(p_logits)``.

    ``p_logits, q_logits: (..., A)`` -> ``(...)``; exact zero when equal.
    derivations/distributions.md#categorical
    """
    logp = log_softmax(p_logits, axis=axis)
    logq = log_softmax(q_logits, axis=axis)
    return np.sum(np.exp(logp) * (logp - logq), axis=axis)


def diag_gaussian_log_prob(x, mean, log_std):
    """``log N(x; mean, diag(exp(2 log_std)))`` summed over the last axis (D4).

    ``x, mean: (..., m)``, ``log_std: (..., m)`` or ``(m,)`` -> ``(...)``.
    derivations/distributions.md#diagonal-gaussian
    """
    z = (x - mean) * np.exp(-log_std)
    return np.sum(-0.5 * z * z - log_std - 0.5 * _LOG_2PI, axis=-1)


def diag_gaussian_entropy(log_std):
    """``H = sum_i (log_std_i + 1/2 log(2 pi e))`` (D5). derivations/distributions.md#diagonal-gaussian"""
    log_std = np.asarray(log_std)
    return np.sum(log_std + 0.5 * (_LOG_2PI + 1.0), axis=-1)


def kl_diag_gaussian(mean_p, log_std_p, mean_q, log_std_q):
    """``KL(p || q)`` for diagonal Gaussians, summed over the last axis (D6):

    ``sum_i [log s_q/s_p + (s_p^2 + (m_p - m_q)^2) / (2 s_q^2) - 1/2]``.
    derivations/distributions.md#diagonal-gaussian
    """
    delta = log_std_p - log_std_q
    diff = (mean_p - mean_q) * np.exp(-log_std_q)
    # expm1 keeps s_p^2/s_q^2 - 1 accurate when the two scales are close
    return np.sum(0.5 * (np.expm1(2.0 * delta) + diff * diff) - delta, axis=-1)
