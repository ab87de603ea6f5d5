"""Returns, reward-to-go, TD residuals, lambda-returns and GAE (SCOPE G8).

All functions take batch-major ``(N, T)`` arrays in which a row may hold
several episodes back to back (a rollout buffer) or one episode followed by
padding (a ``Batch``). Time alignment, rlax style (derivations/returns.md#time-alignment-and-flags):

    rewards[:, t]      r_t, received after a_t in s_t
    values[:, t]       V(s_t)
    next_values[:, t]  V(s_{t+1}), the value of the state actually reached after
                       step t (the observation returned by ``step``, before any reset)
    terminated[:, t]   s_{t+1} is terminal: nothing follows, no bootstrap
    truncated[:, t]    a time limit cut the episode after step t: bootstrap from V(s_{t+1})
    mask[:, t]         step t is real (False on padding; default all True)

A valid step that is neither terminated nor truncated and is followed by
padding or by the end of the row was *cut by the end of the data*: it is
bootstrapped from ``next_values`` exactly like a truncated step (and, where no
``next_values`` are given, its tail counts as 0). Nothing crosses a terminated
step, a truncated step, a padding cell or the end of a row. This is peer
convention C of PEER-CONVENTIONS.md (tianshou, TorchRL, pfrl, rlax); the
others and their cost are in derivations/returns.md#peer-conventions.

Every recursion here is the backward linear recurrence
``y_t = x_t + c_t y_{t+1}``, ``y_T = 0`` (R0), solved by ``refpg.recurrence``
(a loop over time, a log-depth scan or a two-level chunked solve; re-exported
here as ``linear_recurrence``; derivations/returns.md#the-linear-recurrence-and-its-scan).
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from .recurrence import _batch_major, _dtype, _solve_terms, linear_recurrence
from .validation import as_bool_array, as_float_array, check_gamma

__all__ = ["episode_returns", "reward_to_go", "td_residuals", "lambda_returns", "gae",
           "GAE", "linear_recurrence"]


# --------------------------------------------------------------------------- inputs
def _rewards(rewards, name="rewards", finite=True):
    return as_float_array(name, rewards, ndim=2, allow_complex=True, finite=finite)


def _like(name, x, shape, finite=True, tm=False):
    if x is None:
        raise ValueError(f"{name} is required")
    arr = as_float_array(name, x, allow_complex=True, finite=finite)
    if arr.shape != shape:
        # tm: the arrays are transposed views; speak in the caller's (T, N) layout
        want, got, text = (shape[::-1], arr.shape[::-1], "(T, N)") if tm else \
            (shape, arr.shape, "(N, T)")
        raise ValueError(f"{name} must have the shape of rewards {text} = {want}; got {got}")
    return arr


def _bool(name, x, shape, default, like=None, tm=False):
    if x is None:
        if like is not None:
            return np.full_like(like, default, dtype=bool)   # same memory layout
        return np.full(shape, default, dtype=bool)
    if tm:
        return as_bool_array(name, np.asarray(x).T, shape[::-1], "(T, N)").T
    return as_bool_array(name, x, shape, "(N, T)")


def _at(index, tm):
    """An index of the ``(N, T)`` views in the caller's layout (``(T, N)`` when ``tm``)."""
    idx = tuple(int(i) for i in index)
    return idx[::-1] if tm else idx


def _flags(shape, terminated, truncated, mask, like=None, tm=False):
    """Validated ``(terminated, truncated, mask, cont, cut)``.

    ``cont[t]``: step t is valid and its episode continues into column t+1
    (the recursion links t to t+1). ``cut[t]``: step t is valid, not done, and
    column t+1 is padding or beyond the row (end of data: bootstrap).
    ``tm``: the inputs are transposed views of the caller's ``(T, N)`` arrays
    (errors then give the caller's coordinates).
    """
    term = _bool("terminated", terminated, shape, False, like, tm)
    trunc = _bool("truncated", truncated, shape, False, like, tm)
    all_valid = mask is None
    mask = _bool("mask", mask, shape, True, like, tm)
    done = term | trunc
    if np.count_nonzero(done) != np.count_nonzero(term) + np.count_nonzero(trunc):
        idx = _at(np.argwhere(term & trunc)[0], tm)
        raise ValueError(f"terminated and truncated are exclusive; both are set at {idx}")
    if all_valid:
        # no padding: every step is valid and only the last column is followed by nothing
        live = ~done
        cont = live.copy(order="K")   # keep time-major memory time-major
        cut = np.zeros_like(live)
        if shape[1]:
            cont[:, -1] = False
            cut[:, -1] = live[:, -1]
        return term, trunc, mask, cont, cut
    on_pad = done & ~mask
    if on_pad.any():
        idx = _at(np.argwhere(on_pad)[0], tm)
        raise ValueError(f"terminated/truncated must be False on padding (mask False); "
                         f"set at {idx}")
    live = mask & ~done
    nxt = np.zeros_like(mask)
    nxt[:, :-1] = mask[:, 1:]
    cont = live & nxt
    cut = live & ~nxt
    return term, trunc, mask, cont, cut


def _check_finite(result, total=None, tm=False, **inputs):
    """Raise ``ValueError`` naming the first non-finite input, looked for only when
    ``result`` is not finite (``total``: the sum of ``result`` if already computed).

    Every entry of every input reaches ``result`` through products and sums
    only (boolean weights multiply, padding is multiplied by 0, never
    selected away), and NaN or inf never turns finite that way (inf * 0 is
    NaN): a non-finite input always makes the result non-finite. So the inputs'
    own scans (a pass over each) run only on failure; a result that overflowed
    from finite inputs is returned as computed, with a ``RuntimeWarning``. ``tm``:
    the inputs are transposed views of the caller's ``(T, N)`` arrays (the error
    gives the caller's coordinates).
    derivations/returns.md#the-linear-recurrence-and-its-scan
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if total is None:
            total = np.add.reduce(result, axis=None)
        if np.isfinite(total):
            return
    _require_finite(tm, **inputs)
    if not np.all(np.isfinite(result)):
        warnings.warn("the result overflowed (finite inputs, non-finite result)",
                      RuntimeWarning, stacklevel=3)


def _require_finite(tm, **inputs):
    """``ValueError`` naming the first input with NaN or inf, at the caller's index."""
    for name, arr in inputs.items():
        if arr is not None:
            as_float_array(name, arr.T if tm else arr, allow_complex=True)


def _delta(r, v, nv, gamma, term, mask):
    """(R3): ``delta = r - v + gamma (1 - term) nv``, 0 on padding (few passes, in place)."""
    delta = np.subtract(r, v, dtype=_dtype(r, v, nv))
    boot = np.multiply(~term, gamma, dtype=delta.dtype)
    boot *= nv
    delta += boot
    if not mask.all():
        delta[~mask] = 0.0
    return delta


# -------------------------------------------------------------------- the returns
def episode_returns(rewards, gamma, *, mask=None):
    """Whole-episode discounted return ``R(tau) = sum_t gamma^t r_t`` per row (R1): ``(N,)``.

    ``rewards: (N, T)``, one episode per row starting at ``t = 0``, valid steps
    marked by ``mask: (N, T)`` (rewards on padding are ignored).
    derivations/returns.md#discounted-returns
    """
    rewards = _rewards(rewards)
    gamma = check_gamma(gamma)
    m = _bool("mask", mask, rewards.shape, True)
    prefix = np.arange(m.shape[1])[None, :] < m.sum(axis=1)[:, None]
    if not np.array_equal(prefix, m):
        row = int(np.flatnonzero((prefix != m).any(axis=1))[0])
        raise ValueError(f"mask must mark one episode per row starting at t = 0 (True then "
                         f"False); row {row} is not of that form")
    disc = gamma ** np.arange(rewards.shape[1])
    return np.where(m, rewards, 0.0) @ disc


def reward_to_go(rewards, gamma, *, terminated=None, truncated=None, next_values=None,
                 mask=None, method="auto", time_major=False):
    """Discounted reward-to-go with episode boundaries (R2): ``(N, T)``, 0 on padding.

        G_t = r_t + gamma (1 - done_t) G_{t+1} + gamma b_t V(s_{t+1})

    where ``done = terminated | truncated`` (or padding next) and ``b_t = 1``
    on truncated and cut steps when ``next_values`` are given (bootstrap), else
    ``b_t = 0`` (the tail beyond the data counts as 0). Within an episode this
    is ``G_t = sum_{k=t}^{end} gamma^(k-t) r_k [+ gamma^(end+1-t) V(s_{end+1})]``.
    ``rewards, next_values: (N, T)``; flags and ``mask: (N, T)`` bool; with no
    flags each row is one episode (the estimators' use).
    ``time_major=True``: every array argument and the result are ``(T, N)``
    instead (a rollout buffer as PyTorch code stores it; no copy is made).
    derivations/returns.md#reward-to-go
    """
    rewards, terminated, truncated, next_values, mask = _batch_major(
        time_major, rewards, terminated, truncated, next_values, mask)
    r = _rewards(rewards, finite=False)
    gamma = check_gamma(gamma)
    term, trunc, mask, cont, cut = _flags(r.shape, terminated, truncated, mask, r, time_major)
    terms = [(r, None, 1.0)]
    nv = None
    if next_values is not None:
        nv = _like("next_values", next_values, r.shape, finite=False, tm=time_major)
        terms.append((nv, trunc | cut, gamma))
    with np.errstate(over="ignore", invalid="ignore"):   # non-finite: _check_finite
        out, total = _solve_terms(terms, cont, gamma, mask, method)
    _check_finite(out, total, time_major, rewards=r, next_values=nv)
    return out.T if time_major else out


def td_residuals(rewards, values, next_values, gamma, *, terminated=None, mask=None,
                 time_major=False):
    """TD residuals (R3): ``(N, T)``.

        delta_t = r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t)

    ``rewards, values, next_values: (N, T)`` (``values[:, t] = V(s_t)``,
    ``next_values[:, t] = V(s_{t+1})``); ``terminated, mask: (N, T)`` bool.
    Truncation does not change ``delta_t``: the state reached is not terminal.
    0 on padding.
    ``time_major=True``: every array argument and the result are ``(T, N)``
    instead (a rollout buffer as PyTorch code stores it; no copy is made).
    derivations/returns.md#td-residuals
    """
    rewards, values, next_values, terminated, mask = _batch_major(
        time_major, rewards, values, next_values, terminated, mask)
    r = _rewards(rewards, finite=False)
    v = _like("values", values, r.shape, finite=False, tm=time_major)
    nv = _like("next_values", next_values, r.shape, finite=False, tm=time_major)
    gamma = check_gamma(gamma)
    term, _, mask, _, _ = _flags(r.shape, terminated, None, mask, r, time_major)
    _require_finite(time_major, rewards=r, values=v, next_values=nv)
    out = _delta(r, v, nv, gamma, term, mask)
    return out.T if time_major else out


def lambda_returns(rewards, next_values, gamma, lam, *, terminated=None, truncated=None,
                   mask=None, method="auto", time_major=False):
    """Lambda-returns by their recursive definition (R4): ``(N, T)``, 0 on padding.

        G_t = r_t + gamma [ (1 - lam) V(s_{t+1}) + lam G_{t+1} ]   episode continues
        G_t = r_t + gamma V(s_{t+1})                              truncated or cut
        G_t = r_t                                                 terminated

    ``lam = 1`` gives the bootstrapped reward-to-go (R2), ``lam = 0`` the
    one-step target ``r_t + gamma (1 - terminated_t) V(s_{t+1})``. ``rewards,
    next_values: (N, T)``; flags and mask ``(N, T)`` bool.
    ``time_major=True``: every array argument and the result are ``(T, N)``
    instead (a rollout buffer as PyTorch code stores it; no copy is made).
    derivations/returns.md#lambda-returns
    """
    rewards, next_values, terminated, truncated, mask = _batch_major(
        time_major, rewards, next_values, terminated, truncated, mask)
    r = _rewards(rewards, finite=False)
    nv = _like("next_values", next_values, r.shape, finite=False, tm=time_major)
    gamma = check_gamma(gamma)
    lam = check_gamma(lam, name="lam")
    term, trunc, mask, cont, cut = _flags(r.shape, terminated, truncated, mask, r, time_major)
    # weight of V(s_{t+1}): gamma (1 - lam) inside an episode, gamma at its end, 0 if
    # terminal; one product per cell (gamma V - gamma lam V would cancel when lam ~ 1)
    terms = [(r, None, 1.0), (nv, cont, gamma * (1.0 - lam)), (nv, trunc | cut, gamma)]
    with np.errstate(over="ignore", invalid="ignore"):   # non-finite: _check_finite
        out, total = _solve_terms(terms, cont, gamma * lam, mask, method)
    _check_finite(out, total, time_major, rewards=r, next_values=nv)
    return out.T if time_major else out


class GAE(NamedTuple):
    """``(advantages, returns)`` of ``gae``, both ``(N, T)``; ``returns = advantages + values``.

    derivations/returns.md#generalized-advantage-estimation
    """

    advantages: np.ndarray
    returns: np.ndarray


def gae(rewards, values, next_values, gamma, lam, *, terminated=None, truncated=None,
        mask=None, method="auto", time_major=False):
    """Generalized advantage estimation GAE(gamma, lam) (R5); returns ``GAE(advantages, returns)``.

        delta_t = r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t)          (R3)
        A_t     = delta_t + gamma lam (1 - done_t) A_{t+1},  done = terminated | truncated

    and ``A_t = delta_t`` on the last valid step of a row that is not done (the
    row was cut by the buffer end: ``delta`` already bootstraps from
    ``next_values``). ``returns = A + V`` (the lambda-return (R4) when
    ``next_values[:, t] == values[:, t+1]`` inside episodes). ``rewards,
    values, next_values: (N, T)``; flags and ``mask: (N, T)`` bool; both
    outputs are 0 on padding. Schulman et al. (2016), eqs. (11)-(16).
    ``time_major=True``: every array argument and the result are ``(T, N)``
    instead (a rollout buffer as PyTorch code stores it; no copy is made).
    derivations/returns.md#generalized-advantage-estimation
    """
    rewards, values, next_values, terminated, truncated, mask = _batch_major(
        time_major, rewards, values, next_values, terminated, truncated, mask)
    r = _rewards(rewards, finite=False)
    v = _like("values", values, r.shape, finite=False, tm=time_major)
    nv = _like("next_values", next_values, r.shape, finite=False, tm=time_major)
    gamma = check_gamma(gamma)
    lam = check_gamma(lam, name="lam")
    term, trunc, mask, cont, cut = _flags(r.shape, terminated, truncated, mask, r, time_major)
    terms = [(r, None, 1.0), (v, None, -1.0), (nv, ~term, gamma)]   # delta (R3)
    with np.errstate(over="ignore", invalid="ignore"):   # non-finite: _check_finite
        adv, ret, total, total_ret = _solve_terms(terms, cont, gamma * lam, mask, method,
                                                  add_after=v)
    _check_finite(adv, total, time_major, rewards=r, values=v, next_values=nv)  # v reaches adv
    _check_finite(ret, total_ret)    # finite advantages and values: only overflow is left
    if time_major:
        adv, ret = adv.T, ret.T
    return GAE(advantages=adv, returns=ret)
