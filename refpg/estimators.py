"""Sampled policy-gradient estimators, each a plain function of a batch (SCOPE G1-G7).

A ``Batch`` holds ``N`` episodes, one per row, ``(N, T)`` (refpg.batch). With the
score ``psi_t = grad_theta log pi_theta(a_t | s_t)`` of the policy at ``theta``,
every on-policy estimator here is a *coefficient-weighted score sum*
(derivations/estimators.md#the-estimator-family):

    g_hat = (1/N) sum_i g_i,   g_i = sum_{t < L_i} c_{i,t} psi_{i,t}            (G0)

and differs only in the coefficients ``c`` (``estimator_coefficients``):

    REINFORCE              c_t = R - b,              R = sum_t gamma^t r_t        (G2)
    reward-to-go, gamma^t  c_t = gamma^t (G_t - b_t), G_t = sum_{t'>=t} gamma^(t'-t) r_t'  (G3)
    reward-to-go, uniform  c_t = G_t - b_t           (practical; not grad J_H)  (G4)

``(G2)`` and ``(G3)`` are unbiased for ``grad J_H`` (refpg.policy_gradient, PG3);
``(G4)`` has mean ``sum_t sum_s p_t(s) sum_a pi grad log pi Q_t(s, a)``. Baselines
``b``: a constant, the batch mean of the returns (biased by exactly ``-grad J_H / N``),
its leave-one-out version (unbiased), a per-component constant ``b: (d,)`` (the
variance-optimal one, ``optimal_baseline``), or a time-indexed state baseline
``b_t(s_t)`` such as ``V_t`` of refpg.evaluation.evaluate_finite_horizon.

The pseudo-loss (G7) is the scalar whose gradient is the estimator. Off-policy
estimators by importance sampling (G6) and the importance-sampled surrogate
are in ``refpg.off_policy``.
"""
from __future__ import annotations

import numbers

import numpy as np

from .batch import Batch
from .policies.base import Policy
from .returns import episode_returns, reward_to_go
from .validation import as_float_array, check_gamma

__all__ = ["scores", "estimator_coefficients", "score_contributions",
           "reinforce_contributions", "reinforce",
           "reinforce_reward_to_go_contributions", "reinforce_reward_to_go",
           "optimal_baseline", "pseudo_loss", "pseudo_loss_gradient"]

_ESTIMATORS = ("reinforce", "reward_to_go")
_WEIGHTINGS = ("discounted", "uniform")
_BATCH_BASELINES = ("mean", "leave_one_out")


# --------------------------------------------------------------------------- validation
def _check_batch(batch, policy=None):
    """Type and range checks on what reaches an estimator; returns the batch."""
    if not isinstance(batch, Batch):
        raise TypeError(f"batch must be a refpg.batch.Batch (one episode per row); "
                        f"got {type(batch).__name__}")
    if policy is None:
        return batch
    if not isinstance(policy, Policy):
        raise TypeError(f"policy must be a refpg Policy; got {type(policy).__name__}")
    n_states = getattr(policy, "n_states", None)
    for what, mine in (("n_states", n_states), ("n_actions", getattr(policy, "n_actions", None))):
        theirs = getattr(batch, what)
        if mine is not None and theirs is not None and mine != theirs:
            raise ValueError(f"batch.{what} = {theirs} but the policy has {what} = {mine}")
    valid = batch.mask
    if n_states is not None:
        if batch.states.ndim != 2 or batch.states.dtype.kind not in "iu":
            raise ValueError(f"batch.states must be (N, T) state indices for {policy!r}; "
                             f"got dtype {batch.states.dtype}, shape {batch.states.shape}")
        s = batch.states[valid]
        if s.size and (s.min() < 0 or s.max() >= n_states):
            bad = int(s[(s < 0) | (s >= n_states)][0])
            raise ValueError(f"batch.states must lie in [0, {n_states}) for {policy!r}; "
                             f"found {bad}")
    n_actions = getattr(policy, "n_actions", None)
    if n_actions is not None and batch.actions.ndim == 2:
        a = batch.actions[valid]
        if a.dtype.kind not in "iu":
            raise ValueError(f"batch.actions must be integer indices; got dtype {a.dtype}")
        if a.size and (a.min() < 0 or a.max() >= n_actions):
            bad = int(a[(a < 0) | (a >= n_actions)][0])
            raise ValueError(f"batch.actions must lie in [0, {n_actions}) for {policy!r}; "
                             f"found {bad}")
    return batch


def _choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}; got {value!r}")
    return value


def _per_step_weights(weighting, gamma, T):
    """``w_t = gamma^t`` ("discounted") or ``1`` ("uniform"): ``(T,)``."""
    _choice("weighting", weighting, _WEIGHTINGS)
    return gamma ** np.arange(T) if weighting == "discounted" else np.ones(T)


def _valid_scores(batch, policy, theta):
    """``psi`` on the valid steps, row-major: ``(n_valid, d)``, and the row of each."""
    obs = batch.states[batch.mask]
    acts = batch.actions[batch.mask]
    psi = policy.grad_log_prob(theta, obs, acts)
    return psi.reshape(acts.shape[0], policy.n_params)   # also with no valid step at all


def _row_sums(batch, values):
    """Sum ``values: (n_valid, ...)`` (valid steps in row-major order) per row: ``(N, ...)``."""
    N = batch.n_episodes
    lengths = batch.lengths
    out = np.zeros((N,) + values.shape[1:], dtype=values.dtype)
    has = lengths > 0
    if has.any():
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))[has]
        out[has] = np.add.reduceat(values, starts, axis=0)
    return out


# --------------------------------------------------------------------------- scores
def scores(batch, policy, theta):
    """Scores ``psi_{i,t} = grad_theta log pi_theta(a_t | s_t)``: ``(N, T, d)``, 0 on padding.

    The policy's own score at ``theta`` (never ``batch.log_probs``). G1: the score
    of a whole trajectory is ``sum_t psi_t`` because the dynamics do not depend on
    ``theta``. Memory ``N T d``; the estimators below never form this array.
    derivations/estimators.md#the-log-derivative-trick
    """
    _check_batch(batch, policy)
    psi = _valid_scores(batch, policy, theta)
    out = np.zeros(batch.mask.shape + (psi.shape[1],), dtype=psi.dtype)
    out[batch.mask] = psi
    return out


def _returns(batch, gamma):
    R = episode_returns(batch.rewards, gamma, mask=batch.mask)
    G = reward_to_go(batch.rewards, gamma, mask=batch.mask)
    return R, G


def _batch_mean_baseline(x, leave_one_out, name="baseline"):
    """Column means of ``x: (N, ...)`` over rows, including or leaving out each row."""
    N = x.shape[0]
    total = x.sum(axis=0, keepdims=True)
    if not leave_one_out:
        return np.broadcast_to(total / N, x.shape)
    if N < 2:
        raise ValueError(f"{name}='leave_one_out' needs n_episodes >= 2; got {N}")
    return (total - x) / (N - 1)


def _state_baseline(state_values, batch):
    """``b_{i,t} = state_values[t, s_{i,t}]`` on valid steps: ``(N, T)``."""
    v = as_float_array("state_values", state_values, ndim=2)
    T = batch.max_steps
    S = batch.n_states
    if v.shape[0] < T or (S is not None and v.shape[1] != S):
        want = "S" if S is None else f"S = {S}"
        raise ValueError(f"state_values must be a time-indexed table (T', {want}) with T' >= "
                         f"T = {T}, e.g. evaluate_finite_horizon(mdp, pi).V; got {v.shape}")
    s = batch.states
    if s.ndim != 2 or s.dtype.kind not in "iu":
        raise ValueError("state_values needs batch.states to be (N, T) state indices")
    valid = s[batch.mask]
    if valid.size and (valid.min() < 0 or valid.max() >= v.shape[1]):
        raise ValueError(f"batch.states must lie in [0, {v.shape[1]}) to index state_values "
                         f"{v.shape}")
    return v[np.arange(T)[None, :], np.where(batch.mask, s, 0)]


def estimator_coefficients(batch, gamma, *, estimator="reward_to_go", weighting="discounted",
                           baseline=0.0, state_values=None):
    """Coefficients ``c: (N, T)`` with ``g_hat = (1/N) sum_i sum_t c_{i,t} psi_{i,t}`` (G0).

    ``estimator="reinforce"`` (G2): ``c_{i,t} = R_i - b_i`` on every valid step,
    ``R_i = sum_t gamma^t r_{i,t}``. ``estimator="reward_to_go"`` (G3/G4):
    ``c_{i,t} = w_t (G_{i,t} - b_{i,t})`` with ``w_t = gamma^t`` (``weighting=
    "discounted"``, unbiased for ``grad J_H``) or ``1`` (``"uniform"``, the
    practical estimator; REINFORCE ignores ``weighting``).

    ``baseline``: a finite scalar; ``"mean"``: the batch mean of ``R`` (REINFORCE)
    or of ``G_t`` per time step (reward-to-go), including the row itself (mean
    ``(1 - 1/N) grad``); ``"leave_one_out"``: the mean over the other rows
    (unbiased, ``N >= 2``). ``state_values: (T', S)`` with ``T' >= T`` subtracts
    ``b_t(s_t) = state_values[t, s_t]`` (reward-to-go only; pass
    ``evaluate_finite_horizon(mdp, pi).V`` for ``V_t``). Per-component baselines
    ``(d,)`` are not coefficients; see ``score_contributions`` and
    ``reinforce_contributions``. 0 on padding. ``rewards: (N, T)`` from the batch.
    derivations/estimators.md#the-estimator-family
    """
    _check_batch(batch)
    gamma = check_gamma(gamma)
    _choice("estimator", estimator, _ESTIMATORS)
    _choice("weighting", weighting, _WEIGHTINGS)
    R, G = _returns(batch, gamma)
    mask = batch.mask
    T = batch.max_steps
    if state_values is not None and baseline is not None and not (
            isinstance(baseline, numbers.Real) and float(baseline) == 0.0):
        raise ValueError("give either baseline or state_values, not both")
    if estimator == "reinforce":
        if state_values is not None:
            raise ValueError("state_values applies to estimator='reward_to_go' (G_t - V_t(s_t)); "
                             "REINFORCE takes a constant or batch baseline")
        b = _scalar_or_batch_baseline(baseline, R)
        c = np.where(mask, (R - b)[:, None], 0.0)
        return c
    w = _per_step_weights(weighting, gamma, T)
    if state_values is not None:
        b = _state_baseline(state_values, batch)
    else:
        b = _scalar_or_batch_baseline(baseline, G)
    return np.where(mask, w[None, :] * (G - b), 0.0)


def _scalar_or_batch_baseline(baseline, x):
    if baseline is None:
        return 0.0
    if isinstance(baseline, str):
        _choice("baseline", baseline, _BATCH_BASELINES + ("optimal",))
        if baseline == "optimal":
            raise ValueError("baseline='optimal' is per component (d,), not a coefficient; "
                             "use reinforce(...) / reinforce_reward_to_go(...) or "
                             "optimal_baseline(...)")
        return _batch_mean_baseline(x, baseline == "leave_one_out")
    if isinstance(baseline, bool) or not isinstance(baseline, numbers.Real):
        raise ValueError(f"baseline must be a finite scalar, 'mean' or 'leave_one_out' here; "
                         f"got {baseline!r}")
    b = float(baseline)
    if not np.isfinite(b):
        raise ValueError(f"baseline must be finite; got {baseline!r}")
    return b


def score_contributions(batch, policy, theta, coefficients):
    """Per-episode ``g_i = sum_t c_{i,t} psi_{i,t}``: ``(N, d)`` (G0).

    ``coefficients: (N, T)`` (e.g. ``estimator_coefficients``), finite; padding ignored.
    derivations/estimators.md#the-estimator-family
    """
    _check_batch(batch, policy)
    c = as_float_array("coefficients", coefficients, shape=batch.mask.shape)
    psi = _valid_scores(batch, policy, theta)
    return _row_sums(batch, psi * c[batch.mask][:, None])


def _score_sums(batch, policy, theta, w):
    """``Z_i = sum_t w_t psi_{i,t}``: ``(N, d)`` (the factor a constant baseline multiplies)."""
    c = np.where(batch.mask, w[None, :], 0.0)
    return score_contributions(batch, policy, theta, c)


def _vector_baseline(baseline, d):
    b = as_float_array("baseline", baseline)
    if b.shape != (d,):
        raise ValueError(f"a per-component baseline must have shape (d,) = ({d},); got {b.shape}")
    return b


def _contributions(batch, policy, theta, gamma, estimator, weighting, baseline, state_values):
    _check_batch(batch, policy)
    gamma = check_gamma(gamma)
    d = policy.n_params
    per_component = isinstance(baseline, str) and baseline == "optimal" or (
        not isinstance(baseline, (str, numbers.Real)) and baseline is not None)
    if not per_component:
        c = estimator_coefficients(batch, gamma, estimator=estimator, weighting=weighting,
                                   baseline=baseline, state_values=state_values)
        return score_contributions(batch, policy, theta, c)
    if state_values is not None:
        raise ValueError("give either baseline or state_values, not both")
    c = estimator_coefficients(batch, gamma, estimator=estimator, weighting=weighting)
    U = score_contributions(batch, policy, theta, c)
    w = (np.ones(batch.max_steps) if estimator == "reinforce"
         else _per_step_weights(weighting, gamma, batch.max_steps))
    Z = _score_sums(batch, policy, theta, w)
    if isinstance(baseline, str):
        b = _plug_in_optimal(U, Z)
    else:
        b = _vector_baseline(baseline, d)
    return U - b[None, :] * Z


def _plug_in_optimal(U, Z):
    num = np.sum(U * Z, axis=0)
    den = np.sum(Z * Z, axis=0)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


# --------------------------------------------------------------------------- REINFORCE
def reinforce_contributions(batch, policy, theta, gamma, *, baseline=0.0):
    """Per-episode REINFORCE terms ``g_i = (sum_t psi_{i,t}) (R_i - b)``: ``(N, d)`` (G2).

    ``R_i = sum_t gamma^t r_{i,t}``; ``baseline``: scalar, ``"mean"``,
    ``"leave_one_out"``, a per-component ``(d,)`` array (``g_{i,k} = Z_{i,k}(R_i - b_k)``)
    or ``"optimal"`` (the plug-in ``optimal_baseline`` of this batch, which uses
    every row and is therefore biased at ``O(1/N)``). Unbiased for ``grad J_H``
    with any constant or leave-one-out baseline.
    derivations/estimators.md#reinforce
    """
    return _contributions(batch, policy, theta, gamma, "reinforce", "discounted", baseline, None)


def reinforce(batch, policy, theta, gamma, *, baseline=0.0):
    """REINFORCE ``(1/N) sum_i (sum_t psi_{i,t}) (R_i - b)``: ``(d,)`` (G2).

    See ``reinforce_contributions``. derivations/estimators.md#reinforce
    """
    return reinforce_contributions(batch, policy, theta, gamma, baseline=baseline).mean(axis=0)


def reinforce_reward_to_go_contributions(batch, policy, theta, gamma, *, weighting="discounted",
                                         baseline=0.0, state_values=None):
    """Per-episode ``g_i = sum_t w_t psi_{i,t} (G_{i,t} - b_t)``: ``(N, d)`` (G3, G4).

    ``weighting="discounted"``: ``w_t = gamma^t``, unbiased for ``grad J_H``;
    ``"uniform"``: ``w_t = 1``, mean ``sum_t sum_s p_t(s) sum_a pi grad log pi Q_t``
    (derivations/estimators.md#two-discountings). Baselines as in
    ``reinforce_contributions`` (``"mean"`` is the batch mean of ``G_t`` per
    time step) or ``state_values: (T', S)`` for ``b_t(s_t)``.
    derivations/estimators.md#reward-to-go
    """
    return _contributions(batch, policy, theta, gamma, "reward_to_go", weighting, baseline,
                          state_values)


def reinforce_reward_to_go(batch, policy, theta, gamma, *, weighting="discounted", baseline=0.0,
                           state_values=None):
    """Reward-to-go estimator ``(1/N) sum_i sum_t w_t psi_{i,t} (G_{i,t} - b_t)``: ``(d,)``.

    See ``reinforce_reward_to_go_contributions``. derivations/estimators.md#reward-to-go
    """
    return reinforce_reward_to_go_contributions(
        batch, policy, theta, gamma, weighting=weighting, baseline=baseline,
        state_values=state_values).mean(axis=0)


def optimal_baseline(batch, policy, theta, gamma, *, estimator="reinforce",
                     weighting="discounted"):
    """Plug-in variance-optimal constant baseline per component: ``(d,)`` (G5, B3).

    ``b_k = sum_i U_{i,k} Z_{i,k} / sum_i Z_{i,k}^2`` with ``U_i`` the estimator's
    per-episode term without baseline and ``Z_i = sum_t w_t psi_{i,t}`` (for
    REINFORCE ``U = Z R`` and this is ``sum Z_k^2 R / sum Z_k^2``, the sample
    version of ``E[g_k^2 R] / E[g_k^2]``). Components with ``sum Z_k^2 = 0``
    (their estimator component is identically 0) get ``b_k = 0``. The exact
    value is ``refpg.moments.exact_optimal_baseline``.
    derivations/estimators.md#the-optimal-constant-baseline
    """
    _check_batch(batch, policy)
    gamma = check_gamma(gamma)
    _choice("estimator", estimator, _ESTIMATORS)
    c = estimator_coefficients(batch, gamma, estimator=estimator, weighting=weighting)
    U = score_contributions(batch, policy, theta, c)
    w = (np.ones(batch.max_steps) if estimator == "reinforce"
         else _per_step_weights(weighting, gamma, batch.max_steps))
    return _plug_in_optimal(U, _score_sums(batch, policy, theta, w))


# --------------------------------------------------------------------------- pseudo-loss
_REDUCTIONS = ("episodes", "steps")


def _reduce(batch, total, reduction):
    _choice("reduction", reduction, _REDUCTIONS)
    if reduction == "episodes":
        return total / batch.n_episodes
    n = int(batch.mask.sum())
    if n == 0:
        raise ValueError("reduction='steps' on a batch without valid steps")
    return total / n


def pseudo_loss(batch, policy, theta, coefficients, *, reduction="episodes"):
    """``L(theta) = -(1/N) sum_i sum_t c_{i,t} log pi_theta(a_t | s_t)`` (G7, PL1).

    ``coefficients: (N, T)`` are constants (detached in autodiff code), e.g.
    ``estimator_coefficients``; then ``-grad L`` is the estimator (G0). This is how
    PyTorch/JAX code implements G2-G6. ``reduction="steps"`` divides by the number
    of valid steps instead of ``N`` (spinningup / SB3 convention): a different,
    batch-dependent scale. Complex-safe in ``theta``.
    derivations/estimators.md#the-pseudo-loss
    """
    _check_batch(batch, policy)
    c = as_float_array("coefficients", coefficients, shape=batch.mask.shape)
    logp = policy.log_prob(theta, batch.states[batch.mask], batch.actions[batch.mask])
    return -_reduce(batch, np.sum(c[batch.mask] * logp), reduction)


def pseudo_loss_gradient(batch, policy, theta, coefficients, *, reduction="episodes"):
    """Hand-written ``grad L = -(1/N) sum_i sum_t c_{i,t} psi_{i,t}``: ``(d,)`` (G7, PL2).

    derivations/estimators.md#the-pseudo-loss
    """
    contrib = score_contributions(batch, policy, theta, coefficients)
    return -_reduce(batch, contrib.sum(axis=0), reduction)
