"""Returns, reward-to-go, TD residuals, lambda-returns and GAE (SCOPE G8).

(to be completed by issue 3; the two functions below fix the signatures the
estimators use.) derivations/returns.md
"""
from __future__ import annotations

import numpy as np

from .validation import as_float_array, check_gamma

__all__ = ["episode_returns", "reward_to_go"]


def _mask(mask, shape):
    if mask is None:
        return np.ones(shape, bool)
    m = np.asarray(mask)
    if m.shape != shape or m.dtype != bool:
        raise ValueError(f"mask must be a bool array of shape {shape}; got {m.dtype} {m.shape}")
    return m


def episode_returns(rewards, gamma, *, mask=None):
    """Whole-episode discounted return ``R(tau) = sum_t gamma^t r_t`` per row: ``(N,)``.

    ``rewards: (N, T)``, one episode per row, valid steps marked by ``mask``.
    derivations/returns.md#discounted-returns
    """
    rewards = as_float_array("rewards", rewards, ndim=2)
    gamma = check_gamma(gamma)
    m = _mask(mask, rewards.shape)
    disc = gamma ** np.arange(rewards.shape[1])
    return np.where(m, rewards, 0.0) @ disc


def reward_to_go(rewards, gamma, *, mask=None):
    """``G_t = sum_{t' >= t} gamma^(t'-t) r_t'`` within each row: ``(N, T)`` (0 on padding).

    ``rewards: (N, T)``, one episode per row. derivations/returns.md#reward-to-go
    """
    rewards = as_float_array("rewards", rewards, ndim=2)
    gamma = check_gamma(gamma)
    m = _mask(mask, rewards.shape)
    r = np.where(m, rewards, 0.0)
    out = np.zeros_like(r)
    acc = np.zeros(r.shape[0])
    for t in range(r.shape[1] - 1, -1, -1):
        acc = r[:, t] + gamma * acc
        out[:, t] = acc
    return np.where(m, out, 0.0)
